-- Workflow, four eyes, scheduling, provenance and cascade on the content items.
ALTER TABLE contents
    ADD COLUMN body                    text        NOT NULL DEFAULT '',
    -- Who wrote the current version since its last approval: none of them may approve it.
    ADD COLUMN authors                 text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN approved_by             text,
    ADD COLUMN publish_at              timestamptz,
    ADD COLUMN expire_at               timestamptz,
    ADD COLUMN embargo_until           timestamptz,
    ADD COLUMN retired_at              timestamptz,
    ADD COLUMN updated_at              timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN charter_override_reason text,
    ADD COLUMN group_content_id        uuid;
UPDATE contents SET authors = ARRAY[created_by];

-- The scheduler's two queries: due publications and due expiries.
CREATE INDEX contents_due_publication ON contents (publish_at) WHERE state = 'scheduled';
CREATE INDEX contents_due_expiry ON contents (expire_at) WHERE state <> 'retired' AND expire_at IS NOT NULL;
CREATE INDEX contents_by_owner ON contents (tenant, owner_subsidiary, created_at);

ALTER TABLE content_transitions
    ADD COLUMN revision integer,
    ADD COLUMN action   text,
    ADD COLUMN detail   jsonb;  -- e.g. the charter violations an admin overrode

-- The brand charter: scope '' is the tenant's own, any other scope a subsidiary's override.
CREATE TABLE charters (
    tenant      text        NOT NULL,
    scope       text        NOT NULL,
    rules       jsonb       NOT NULL,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, scope)
);

-- Intranet and PR tools: may their items be auto-approved, and the webhook signing secret.
CREATE TABLE ingestion_sources (
    tenant          text        NOT NULL,
    source_system   text        NOT NULL,
    auto_approve    boolean     NOT NULL DEFAULT false,
    webhook_secret  text,
    updated_by      text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, source_system)
);

-- Group items offered to subsidiaries, and what each did with it.
CREATE TABLE cascade_offers (
    tenant            text        NOT NULL,
    group_content_id  uuid        NOT NULL,
    subsidiary        text        NOT NULL,
    status            text        NOT NULL DEFAULT 'offered',
    local_content_id  uuid,
    offered_by        text        NOT NULL,
    offered_at        timestamptz NOT NULL DEFAULT now(),
    decided_by        text,
    decided_at        timestamptz,
    reason            text,
    PRIMARY KEY (tenant, group_content_id, subsidiary)
);
CREATE INDEX cascade_offers_by_subsidiary ON cascade_offers (tenant, subsidiary, status);
