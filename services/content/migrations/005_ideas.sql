-- Ambassadors' own ideas (a link, or a story of their team) enter the same curation queue as the
-- feeds' entries; the proposer follows what became of it and, if they chose a name to be credited
-- with, the content published from it carries that credit.
ALTER TABLE suggestions ALTER COLUMN source_id DROP NOT NULL;
ALTER TABLE suggestions
    ADD COLUMN origin      text NOT NULL DEFAULT 'feed' CHECK (origin IN ('feed', 'idea')),
    ADD COLUMN proposed_by text,
    ADD COLUMN credit_name text,
    ADD COLUMN reason      text;
CREATE INDEX suggestions_proposer ON suggestions (tenant, proposed_by, created_at DESC) WHERE proposed_by IS NOT NULL;

ALTER TABLE contents ADD COLUMN credit text;
