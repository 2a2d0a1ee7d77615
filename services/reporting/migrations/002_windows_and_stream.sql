-- Rollups by tenant x scope x window. The slice's single-window counters are replaced: a
-- replay of the topics rebuilds every number from the events.
DROP TABLE counters;

CREATE TABLE rollups (
    tenant        text        NOT NULL,
    scope_type    text        NOT NULL,
    scope_id      text        NOT NULL,
    time_window   text        NOT NULL,  -- hour, day, month, all
    window_start  timestamptz NOT NULL,  -- 1970-01-01 for all
    kpi           text        NOT NULL,
    value         bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, scope_type, scope_id, time_window, window_start, kpi)
);
-- Leaderboards read one KPI of one scope type in one window, largest first.
CREATE INDEX rollups_ranking ON rollups (tenant, scope_type, time_window, window_start, kpi, value DESC);

-- Distinct members behind the distinct counts (notified and sharing ambassadors, potential
-- reach): a member adds its value to the KPI only the first time it joins a scope's window.
CREATE TABLE rollup_members (
    tenant        text        NOT NULL,
    scope_type    text        NOT NULL,
    scope_id      text        NOT NULL,
    time_window   text        NOT NULL,
    window_start  timestamptz NOT NULL,
    kpi           text        NOT NULL,
    member        text        NOT NULL,
    value         bigint      NOT NULL,
    PRIMARY KEY (tenant, scope_type, scope_id, time_window, window_start, kpi, member)
);

-- Engagements counted before their content's publication or their ambassador's profile was
-- read (the topics are consumed independently): what they still owe to the scopes those
-- define, added when the missing fact arrives, so the arrival order never changes a number.
CREATE TABLE pending_engagements (
    tenant          text        NOT NULL,
    source          text        NOT NULL,
    event_id        text        NOT NULL,
    content_id      text        NOT NULL,
    ambassador_id   text,
    data            jsonb       NOT NULL,
    content_known   boolean     NOT NULL,
    ambassador_known boolean    NOT NULL,
    PRIMARY KEY (tenant, source, event_id)
);
CREATE INDEX pending_by_content ON pending_engagements (tenant, content_id) WHERE NOT content_known;
CREATE INDEX pending_by_ambassador ON pending_engagements (tenant, ambassador_id) WHERE NOT ambassador_known;

ALTER TABLE contents ADD COLUMN published_at timestamptz;
ALTER TABLE contents ADD COLUMN first_share_at timestamptz;
ALTER TABLE contents ALTER COLUMN title DROP NOT NULL;

-- The directory's history from ambassadors.v1, effective-dated: enrolment and profile as of
-- any instant (rates of a past period use that period's enrolment).
CREATE TABLE ambassador_history (
    seq              bigserial   PRIMARY KEY,
    tenant           text        NOT NULL,
    ambassador_id    text        NOT NULL,
    effective_at     timestamptz NOT NULL,
    enrolled         boolean     NOT NULL,
    subsidiary       text        NOT NULL,
    department       text        NOT NULL DEFAULT '',
    network_audience jsonb       NOT NULL DEFAULT '{}',
    named            boolean     NOT NULL DEFAULT false
);
CREATE INDEX ambassador_history_as_of ON ambassador_history (tenant, ambassador_id, effective_at DESC, seq DESC);
CREATE INDEX ambassador_history_tenant ON ambassador_history (tenant, effective_at);

-- Days on which an ambassador shared: active ambassadors over any 30 days.
CREATE TABLE share_days (
    tenant         text NOT NULL,
    ambassador_id  text NOT NULL,
    day            date NOT NULL,
    PRIMARY KEY (tenant, day, ambassador_id)
);

-- Per-tenant media rates for earned media value (admin API).
CREATE TABLE media_rates (
    tenant      text        PRIMARY KEY,
    currency    text        NOT NULL,
    rates       jsonb       NOT NULL,  -- network -> {"cpm": ..., "cpc": ...}
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The KPI stream: keys touched since their last emission, and what was last emitted.
CREATE TABLE kpi_dirty (
    tenant        text        NOT NULL,
    scope_type    text        NOT NULL,
    scope_id      text        NOT NULL,
    time_window   text        NOT NULL,
    window_start  timestamptz NOT NULL,
    touched_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, scope_type, scope_id, time_window, window_start)
);
CREATE TABLE kpi_emitted (
    tenant        text        NOT NULL,
    scope_type    text        NOT NULL,
    scope_id      text        NOT NULL,
    time_window   text        NOT NULL,
    window_start  timestamptz NOT NULL,
    kpi_values    jsonb       NOT NULL,
    emitted_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant, scope_type, scope_id, time_window, window_start)
);

-- Outbound webhooks: subscriptions and their deliveries (kept, hence replayable).
CREATE TABLE webhook_subscriptions (
    id          uuid        PRIMARY KEY,
    tenant      text        NOT NULL,
    url         text        NOT NULL,
    secret      text        NOT NULL,
    event_types text[]      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant);
CREATE TABLE webhook_deliveries (
    id              uuid        PRIMARY KEY,
    tenant          text        NOT NULL,
    subscription_id uuid        NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',  -- pending, delivered, failed
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant, created_at DESC);
