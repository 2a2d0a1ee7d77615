-- One index on notifications by ambassador instead of two (each fan-out page inserts into every
-- index): notifications_feed served the opt-out's cancellation (tenant, ambassador_id) and
-- notifications_sent_recently (partial, status = 'sent') the feed and the fatigue budget's
-- recent alerts. This one serves all three; status is included so that the budget's lookup
-- stays an index-only scan.
CREATE INDEX notifications_by_ambassador ON notifications (tenant, ambassador_id, sent_at) INCLUDE (status);
DROP INDEX notifications_feed;
DROP INDEX notifications_sent_recently;
