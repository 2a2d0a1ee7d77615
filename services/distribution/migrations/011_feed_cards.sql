-- What a feed card shows beside the title: the content's summary and image (ContentPublished's).
ALTER TABLE contents ADD COLUMN summary text NOT NULL DEFAULT '';
ALTER TABLE contents ADD COLUMN image_url text;
