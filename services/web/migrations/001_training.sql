-- The training kit a tenant's comms team wrote in the studio (how to share well, what not to
-- say), one text per language; a tenant without one gets the kit of the settings file.
CREATE TABLE training_kits (
    tenant      text        PRIMARY KEY,
    version     integer     NOT NULL,
    texts       jsonb       NOT NULL,   -- {"en": "...", "fr": "..."}
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who confirmed reading the kit, and which version: required before a first share.
CREATE TABLE training_reads (
    tenant      text        NOT NULL,
    subject     text        NOT NULL,
    version     integer     NOT NULL,
    read_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, subject)
);
