CREATE TABLE contents (
    tenant            text        NOT NULL,
    id                uuid        NOT NULL,
    title             text        NOT NULL,
    summary           text        NOT NULL DEFAULT '',
    url               text        NOT NULL,
    image_url         text,
    language          text        NOT NULL,
    tags              text[]      NOT NULL DEFAULT '{}',
    campaign          text,
    owner_subsidiary  text,
    audience          jsonb       NOT NULL DEFAULT '{}',
    share_texts       jsonb       NOT NULL DEFAULT '[]',
    state             text        NOT NULL DEFAULT 'draft',
    revision          integer     NOT NULL DEFAULT 1,
    source_system     text,
    external_id       text,
    external_version  integer,
    created_by        text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz,
    PRIMARY KEY (tenant, id)
);
CREATE UNIQUE INDEX contents_external ON contents (tenant, source_system, external_id)
    WHERE external_id IS NOT NULL;

-- Every state change: who, when, from, to, why.
CREATE TABLE content_transitions (
    id          bigserial   PRIMARY KEY,
    tenant      text        NOT NULL,
    content_id  uuid        NOT NULL,
    from_state  text,
    to_state    text        NOT NULL,
    actor       text        NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX content_transitions_item ON content_transitions (tenant, content_id, id);
