-- A fan-out page that fails (a bug, bad data) is retried later with a growing delay, and
-- meanwhile the other fan-outs go on; why it failed is kept here (and logged).
ALTER TABLE fanout_slices ADD COLUMN attempts integer NOT NULL DEFAULT 0;
ALTER TABLE fanout_slices ADD COLUMN retry_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE fanout_slices ADD COLUMN last_error text;
