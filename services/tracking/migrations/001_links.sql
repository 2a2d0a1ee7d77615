-- Tracked links, learnt from distribution's notification.sent events. Codes are random and
-- global (the redirect URL carries no tenant), so the code alone is the key.
CREATE TABLE links (
    code             text        PRIMARY KEY,
    tenant           text        NOT NULL,
    notification_id  text        NOT NULL,
    content_id       text        NOT NULL,
    ambassador_id    text        NOT NULL,
    network          text        NOT NULL,
    destination_url  text        NOT NULL,
    campaign         text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- The last counted click of a client (a hash of IP and User-Agent, never the address itself)
-- on a code: a click within the window after it is not unique. Shared by every replica;
-- rows older than the window are pruned.
CREATE TABLE recent_clicks (
    code          text        NOT NULL,
    client        bytea       NOT NULL,
    window_start  timestamptz NOT NULL,
    PRIMARY KEY (code, client)
);
CREATE INDEX recent_clicks_age ON recent_clicks (window_start);
