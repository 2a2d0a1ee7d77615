-- The KPI stream's flusher no longer locks the keys it reads: a consumer marking a key dirty
-- bumps its version instead of waiting for the flusher, and the flusher forgets a key only if
-- its version is still the one it read (a change committed meanwhile stays dirty).
ALTER TABLE kpi_dirty ADD COLUMN version bigint NOT NULL DEFAULT 1;
