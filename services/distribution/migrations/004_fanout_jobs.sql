-- A published content's fan-out, recorded by the Kafka consumer (in its inbox transaction) and
-- expanded by the fan-out worker one page at a time, each page its own transaction: the relay
-- publishes the first pages while the next ones are written, and a crash resumes at the cursor.
-- The audience is cut into slices by ambassador id (random UUIDs: even slices); replicas (and
-- the page tasks of one replica) each claim a different slice, FOR UPDATE SKIP LOCKED.
-- A row exists while its slice has work left: done or cancelled (content retired) = deleted.
CREATE TABLE fanout_slices (
    tenant       text        NOT NULL,
    content_id   text        NOT NULL,
    slice        smallint    NOT NULL,
    after_id     uuid        NOT NULL,  -- the cursor: ambassadors up to this id are done
    last_id      uuid        NOT NULL,  -- the slice's last possible ambassador id (inclusive)
    audience     jsonb       NOT NULL,  -- the content.published audience
    tags         text[]      NOT NULL DEFAULT '{}',
    traceparent  text,                  -- the content.published event's trace, carried by every page
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, content_id, slice)
);
CREATE INDEX fanout_slices_oldest ON fanout_slices (created_at);
