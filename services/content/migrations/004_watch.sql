-- Industry watch: the feeds comms teams subscribe to (RSS and Atom), per tenant or subsidiary,
-- and the suggestions their entries become, in a curation queue an editor turns into content.

CREATE TABLE watch_sources (
    id              uuid        PRIMARY KEY,
    tenant          text        NOT NULL,
    scope           text        NOT NULL,          -- a subsidiary code, or '' for the group
    url             text        NOT NULL,
    name            text        NOT NULL,
    tags            text[]      NOT NULL DEFAULT '{}',
    language        text        NOT NULL,          -- the language its suggestions are written in
    active          boolean     NOT NULL DEFAULT true,
    -- Conditional polling: what the publisher answered last time.
    etag            text,
    last_modified   text,
    -- Scheduling: one poller at a time per source across replicas (a lease), back-off when failing.
    next_poll_at    timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    failures        integer     NOT NULL DEFAULT 0,
    last_error      text,
    parked_at       timestamptz,                   -- too many failures: not polled until resumed
    last_polled_at  timestamptz,
    last_ok_at      timestamptz,
    entries_seen    bigint      NOT NULL DEFAULT 0,
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, scope, url)
);
CREATE INDEX watch_sources_due ON watch_sources (next_poll_at) WHERE active AND parked_at IS NULL;

CREATE TABLE suggestions (
    id            uuid        PRIMARY KEY,
    tenant        text        NOT NULL,
    scope         text        NOT NULL,
    source_id     uuid        NOT NULL REFERENCES watch_sources (id) ON DELETE CASCADE,
    link          text        NOT NULL,
    link_key      text        NOT NULL,            -- the link without tracking parameters or fragment
    title         text        NOT NULL,
    title_key     text        NOT NULL,            -- folded words: near-identical titles meet here
    summary       text        NOT NULL DEFAULT '',
    image_url     text,
    published_at  timestamptz,
    language      text        NOT NULL,
    tags          text[]      NOT NULL DEFAULT '{}',
    also_from     uuid[]      NOT NULL DEFAULT '{}', -- other sources that carried the same story
    state         text        NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'adopted', 'dismissed')),
    content_id    uuid,
    decided_by    text,
    decided_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, scope, link_key)
);
CREATE INDEX suggestions_titles ON suggestions (tenant, scope, created_at DESC);
CREATE INDEX suggestions_queue ON suggestions (tenant, state, created_at DESC);
