-- Plain tables for the raw ceilings: the outbox's columns without key, default or index, and
-- the effects written by the hand-rolled consumer diagnostic.
CREATE TABLE raw_outbox (
    topic    text  NOT NULL,
    key      bytea NOT NULL,
    value    bytea NOT NULL,
    headers  jsonb NOT NULL,
    event_id text  NOT NULL
);

CREATE TABLE raw_effects (
    id              bigserial PRIMARY KEY,
    tenant          text NOT NULL,
    notification_id text NOT NULL,
    ambassador_id   text NOT NULL
);
