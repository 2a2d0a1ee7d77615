-- A notification is one content for one ambassador: its tracked links, the share-text variant he
-- was given, and the one channel he is alerted on. It shows in his feed once sent.
ALTER TABLE notifications ADD COLUMN status text NOT NULL DEFAULT 'sent'
    CHECK (status IN ('deferred', 'pending', 'sent', 'failed', 'cancelled'));
ALTER TABLE notifications ADD COLUMN variant integer NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
-- Where a chat message went (e.g. Slack's channel and ts), to edit or retract it later.
ALTER TABLE notifications ADD COLUMN external_ref jsonb;
ALTER TABLE notifications ALTER COLUMN sent_at DROP NOT NULL;
-- The fatigue budget counts what an ambassador was sent lately.
CREATE INDEX notifications_sent_recently ON notifications (tenant, ambassador_id, sent_at) WHERE status = 'sent';

-- What the delivery worker has to do outside the database: an alert (also an in-app alert that
-- was deferred), an edit or a retraction of a chat message already sent. The Kafka consumer only
-- records these rows (in its transaction); the worker claims due rows with a lease
-- (FOR UPDATE SKIP LOCKED: several replicas share the work), sends, and records the outcome.
CREATE TABLE deliveries (
    tenant           text        NOT NULL,
    delivery_id      uuid        NOT NULL,
    notification_id  uuid        NOT NULL,
    ambassador_id    uuid        NOT NULL,
    content_id       text        NOT NULL,
    channel          text        NOT NULL,
    action           text        NOT NULL CHECK (action IN ('alert', 'update', 'retract')),
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
    due_at           timestamptz NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    done_at          timestamptz,
    PRIMARY KEY (tenant, delivery_id)
);
CREATE INDEX deliveries_due ON deliveries (due_at) WHERE status = 'pending';
CREATE INDEX deliveries_notification ON deliveries (tenant, notification_id);
CREATE INDEX deliveries_content ON deliveries (tenant, content_id) WHERE status = 'pending';

-- Every failed attempt, kept as the record of why a notification ended in the DLQ.
CREATE TABLE delivery_attempts (
    tenant        text        NOT NULL,
    delivery_id   uuid        NOT NULL,
    attempt       integer     NOT NULL,
    error         text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, delivery_id, attempt)
);

-- The tenant's chat and intranet endpoints: Slack-compatible Web API (base URL + bot token),
-- Microsoft Teams-compatible incoming webhook (URL), generic Standard Webhooks (URL + whsec_ secret).
CREATE TABLE channel_endpoints (
    tenant      text        NOT NULL,
    channel     text        NOT NULL CHECK (channel IN ('slack', 'teams', 'webhook')),
    url         text        NOT NULL,
    secret      text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, channel)
);
