-- The employees HR tells us about. A departure for an employee never seen before still leaves a
-- row (departed, its version, no profile) so that an older upsert arriving later cannot revive him.
CREATE TABLE employees (
    tenant        text        NOT NULL,
    employee_id   text        NOT NULL,
    email         text,
    given_name    text,
    family_name   text,
    subsidiary    text        NOT NULL DEFAULT '',
    department    text        NOT NULL DEFAULT '',
    site          text        NOT NULL DEFAULT '',
    country       text        NOT NULL DEFAULT '',
    language      text        NOT NULL DEFAULT '',
    manager_id    text,
    departed      boolean     NOT NULL DEFAULT false,
    version       bigint      NOT NULL,
    effective_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, employee_id)
);

-- One row per enrolment period: a withdrawal keeps the consent record, and a re-enrolment gets
-- a new pseudonym. ambassador_id is random, never derived from the HR id.
CREATE TABLE ambassadors (
    tenant                text        NOT NULL,
    ambassador_id         uuid        NOT NULL,
    employee_id           text        NOT NULL,
    consent_text_version  text        NOT NULL,
    network_audience      jsonb       NOT NULL DEFAULT '{}',
    enrolled_at           timestamptz NOT NULL DEFAULT now(),
    withdrawn_at          timestamptz,
    withdrawal_reason     text,
    PRIMARY KEY (tenant, ambassador_id)
);
CREATE UNIQUE INDEX ambassadors_active_employee ON ambassadors (tenant, employee_id) WHERE withdrawn_at IS NULL;

-- What the feed shows of a content; distribution never reads content's tables.
CREATE TABLE contents (
    tenant        text        NOT NULL,
    content_id    text        NOT NULL,
    revision      integer     NOT NULL,
    title         text        NOT NULL,
    url           text        NOT NULL,
    language      text        NOT NULL,
    campaign      text,
    share_texts   jsonb       NOT NULL DEFAULT '[]',
    published_at  timestamptz NOT NULL,
    retired_at    timestamptz,
    PRIMARY KEY (tenant, content_id)
);

-- links: [{"code", "network", "destination_url"}]; codes are 96 random bits.
CREATE TABLE notifications (
    tenant           text        NOT NULL,
    notification_id  uuid        NOT NULL,
    content_id       text        NOT NULL,
    ambassador_id    uuid        NOT NULL,
    channel          text        NOT NULL,
    links            jsonb       NOT NULL DEFAULT '[]',
    sent_at          timestamptz NOT NULL,
    retired_at       timestamptz,
    PRIMARY KEY (tenant, notification_id),
    -- A content republished under a new event id must not notify anyone twice.
    CONSTRAINT notifications_once UNIQUE (tenant, content_id, ambassador_id)
);
CREATE INDEX notifications_feed ON notifications (tenant, ambassador_id, sent_at DESC);
