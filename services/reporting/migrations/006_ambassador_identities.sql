-- Who each ambassador is to reporting, from ambassadors.v1, current state only (never history):
-- the holder digest (HMAC of tenant and sign-in subject: finds a caller's own ambassador for "my
-- results") and the display name, only while the person chooses to be named in leaderboards.
-- A name withdrawn (or an ambassador withdrawn) is overwritten, not kept.
CREATE TABLE ambassador_identities (
    tenant         text        NOT NULL,
    ambassador_id  text        NOT NULL,
    holder         text,
    display_name   text,
    enrolled       boolean     NOT NULL,
    effective_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, ambassador_id)
);
CREATE INDEX ambassador_identities_holder ON ambassador_identities (tenant, holder) WHERE holder IS NOT NULL;
