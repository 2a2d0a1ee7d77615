-- The tenant's org tree of subsidiaries, configured by an admin. While a tenant has none, HR
-- events are accepted for any subsidiary; once it has one, events naming an unknown
-- subsidiary are refused (retried, then the DLQ with the cause) until the admin adds it.
CREATE TABLE subsidiaries (
    tenant      text        NOT NULL,
    code        text        NOT NULL,
    name        text        NOT NULL,
    parent      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, code)
);

-- Erasure (GDPR art. 17, or retention) replaces the HR id everywhere with a tombstone id and
-- clears the personal fields; the tombstone keeps the version so that replays are not re-imported.
ALTER TABLE employees ADD COLUMN erased_at timestamptz;
CREATE INDEX employees_departed ON employees (effective_at) WHERE departed AND erased_at IS NULL;

-- Every HR version we were told about, by effective time: the placement at a past instant is
-- the row with the latest effective_at before it, whatever the arrival order.
CREATE TABLE employee_history (
    tenant        text        NOT NULL,
    employee_id   text        NOT NULL,
    version       bigint      NOT NULL,
    effective_at  timestamptz NOT NULL,
    subsidiary    text        NOT NULL DEFAULT '',
    department    text        NOT NULL DEFAULT '',
    site          text        NOT NULL DEFAULT '',
    departed      boolean     NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, employee_id, version)
);
CREATE INDEX employee_history_at ON employee_history (tenant, effective_at);

-- Consent texts per tenant; the latest published is the current one.
CREATE TABLE consent_texts (
    tenant                 text        NOT NULL,
    version                text        NOT NULL,
    text                   text        NOT NULL,
    reconsent_within_days  real        NOT NULL DEFAULT 0,
    published_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant, version)
);

-- The consent in force of an enrolment; consent_expires_at <= now() means "not active" even
-- before the sweep withdraws it.
ALTER TABLE ambassadors ADD COLUMN consent_channel text NOT NULL DEFAULT 'web';
ALTER TABLE ambassadors ADD COLUMN consented_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE ambassadors ADD COLUMN consent_expires_at timestamptz NOT NULL DEFAULT now() + interval '365 days';
CREATE INDEX ambassadors_consent_expiry ON ambassadors (consent_expires_at) WHERE withdrawn_at IS NULL;

-- The consent record: every consent given, renewed or withdrawn, kept as proof.
CREATE TABLE consents (
    tenant         text        NOT NULL,
    consent_id     uuid        NOT NULL,
    employee_id    text        NOT NULL,
    ambassador_id  uuid        NOT NULL,
    action         text        NOT NULL CHECK (action IN ('given', 'renewed', 'withdrawn')),
    text_version   text        NOT NULL,
    channel        text        NOT NULL,
    at             timestamptz NOT NULL,
    expires_at     timestamptz,
    PRIMARY KEY (tenant, consent_id)
);
CREATE INDEX consents_employee ON consents (tenant, employee_id, at);

CREATE TABLE preferences (
    tenant          text        NOT NULL,
    employee_id     text        NOT NULL,
    channels        text[]      NOT NULL DEFAULT '{}',
    languages       text[]      NOT NULL DEFAULT '{}',
    topics          text[]      NOT NULL DEFAULT '{}',
    max_per_day     integer,
    quiet_start     time,
    quiet_end       time,
    time_zone       text        NOT NULL DEFAULT 'UTC',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, employee_id)
);

-- Ambassador groups (communities) for targeting; managed by admins or by the IdP over SCIM.
CREATE TABLE groups (
    tenant       text        NOT NULL,
    group_id     uuid        NOT NULL,
    name         text        NOT NULL,
    external_id  text,
    version      integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, group_id),
    CONSTRAINT groups_name UNIQUE (tenant, name)
);
CREATE TABLE group_members (
    tenant       text NOT NULL,
    group_id     uuid NOT NULL,
    employee_id  text NOT NULL,
    PRIMARY KEY (tenant, group_id, employee_id),
    FOREIGN KEY (tenant, group_id) REFERENCES groups ON DELETE CASCADE
);
CREATE INDEX group_members_employee ON group_members (tenant, employee_id);

-- SCIM: the IdP's view of its users. The directory itself only learns from hr.employees.v1
-- (a SCIM change emits an HR event); this table is what SCIM reads back.
CREATE TABLE scim_users (
    tenant       text        NOT NULL,
    id           uuid        NOT NULL,
    employee_id  text        NOT NULL,
    user_name    text        NOT NULL,
    resource     jsonb       NOT NULL,
    version      integer     NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (tenant, lower(user_name));
CREATE UNIQUE INDEX scim_users_employee ON scim_users (tenant, employee_id);

-- The version SCIM last emitted per employee: it outlives a deleted SCIM user, so a re-created
-- one keeps emitting newer versions.
CREATE TABLE scim_versions (
    tenant       text   NOT NULL,
    employee_id  text   NOT NULL,
    version      bigint NOT NULL,
    PRIMARY KEY (tenant, employee_id)
);

-- Bearer credentials of identity providers: only a SHA-256 of the token is stored.
CREATE TABLE scim_tokens (
    tenant       text        NOT NULL,
    token_id     uuid        NOT NULL,
    token_hash   bytea       NOT NULL UNIQUE,
    description  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (tenant, token_id)
);

ALTER TABLE notifications ADD COLUMN cancelled_at timestamptz;

CREATE TABLE erasures (
    tenant        text        NOT NULL,
    tombstone_id  text        NOT NULL,
    reason        text        NOT NULL,
    erased_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, tombstone_id, erased_at)
);
