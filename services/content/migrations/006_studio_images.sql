-- The studio's images: uploaded by editors, kept here (bounded size, type checked by magic bytes)
-- and served back by the content service; the alt text travels with the item.
CREATE TABLE images (
    tenant      text        NOT NULL,
    image_id    uuid        NOT NULL,
    media_type  text        NOT NULL CHECK (media_type IN ('image/png', 'image/jpeg', 'image/gif', 'image/webp')),
    data        bytea       NOT NULL,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, image_id)
);

ALTER TABLE contents ADD COLUMN image_alt text;
-- The studio's calendar reads items by the dates they are due (publication, embargo, expiry).
CREATE INDEX contents_publish_at ON contents (tenant, publish_at) WHERE publish_at IS NOT NULL;
CREATE INDEX contents_expire_at ON contents (tenant, expire_at) WHERE expire_at IS NOT NULL;
