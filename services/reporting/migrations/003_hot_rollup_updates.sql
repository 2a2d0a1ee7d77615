-- Consumers add to rollups in every batch. With ``value`` in an index, each of those updates
-- writes a new entry in every index; without it (and with room left in each page), Postgres
-- updates the row in place (a HOT update) and touches no index at all.
-- Leaderboards sum several KPIs per scope before ranking, so ``value`` in the index never
-- served them: the same columns without it filter as well.
DROP INDEX rollups_ranking;
CREATE INDEX rollups_board ON rollups (tenant, scope_type, time_window, window_start, kpi);
ALTER TABLE rollups SET (fillfactor = 70);
ALTER TABLE kpi_dirty SET (fillfactor = 70);
