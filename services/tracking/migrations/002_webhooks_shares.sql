-- Webhook events and share confirmations name a content: it must be one of the tenant's.
CREATE INDEX links_tenant_content ON links (tenant, content_id);

-- Engagement webhook sources. The URL (/v1/webhooks/{source}) carries no tenant, so a source
-- name is global and belongs to the tenant that created it.
CREATE TABLE webhook_sources (
    source      text        PRIMARY KEY,
    tenant      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Standard Webhooks secrets (`whsec_<base64>`). Kept as such: an HMAC needs the secret itself.
-- Every secret not revoked is accepted, so a connector rotates by adding one, switching, then
-- revoking the old one.
CREATE TABLE webhook_secrets (
    secret_id   uuid        PRIMARY KEY,
    source      text        NOT NULL REFERENCES webhook_sources (source),
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX webhook_secrets_active ON webhook_secrets (source) WHERE revoked_at IS NULL;

-- Deliveries already accepted, by webhook-id, with the answer given: a replay gets the same
-- answer and counts nothing. Kept well past the 5-minute signature tolerance, then pruned.
CREATE TABLE webhook_deliveries (
    source       text        NOT NULL,
    webhook_id   text        NOT NULL,
    answer       jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, webhook_id)
);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (received_at);

-- Share confirmations, counted once per (content, ambassador, network, post); post_key is the
-- normalised post URL, '' when the ambassador gave none.
CREATE TABLE shares (
    tenant         text        NOT NULL,
    content_id     text        NOT NULL,
    ambassador_id  text        NOT NULL,
    network        text        NOT NULL,
    post_key       text        NOT NULL,
    post_url       text,
    link_code      text        NOT NULL,
    confirmed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, content_id, ambassador_id, network, post_key)
);
