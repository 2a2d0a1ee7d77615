-- An ambassador may opt in to being named (rather than counted anonymously) in leaderboards and
-- digests; nobody is named unless he chose it.
ALTER TABLE preferences ADD COLUMN named_in_leaderboards boolean NOT NULL DEFAULT false;
