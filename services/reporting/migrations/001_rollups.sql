-- One running total per tenant, scope and KPI. Handlers only ever add deltas to it, in the
-- consumer's batch transaction (whose inbox makes redeliveries harmless).
CREATE TABLE counters (
    tenant      text        NOT NULL,
    scope_type  text        NOT NULL,
    scope_id    text        NOT NULL,
    kpi         text        NOT NULL,
    value       bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, scope_type, scope_id, kpi)
);
-- Rankings ("top contents by clicks") read one KPI of one scope type, largest first.
CREATE INDEX counters_ranking ON counters (tenant, scope_type, kpi, value DESC);

-- What reporting remembers of each content from content.lifecycle.v1: engagements carry only
-- the content id, and are attributed to its subsidiary and campaign through this table.
CREATE TABLE contents (
    tenant            text        NOT NULL,
    content_id        text        NOT NULL,
    title             text        NOT NULL DEFAULT '',
    owner_subsidiary  text,
    campaign          text,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, content_id)
);

-- The subsidiary an ambassador's enrolment was counted in, so that the withdrawal (which
-- carries no subsidiary) is subtracted from the same subsidiary.
CREATE TABLE ambassadors (
    tenant         text        NOT NULL,
    ambassador_id  text        NOT NULL,
    subsidiary     text        NOT NULL,
    enrolled_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant, ambassador_id)
);
