-- The fatigue budget counts the alerts let through, from the moment each was let through
-- (budget_at), not only those already sent: an alert the fan-out lets through to e-mail, Slack, …
-- holds its slot while it waits for the delivery worker, so a decision taken meanwhile (another
-- content's fan-out page, another replica's delivery worker) sees it. The decisions are taken
-- under the ambassador's row lock (repository.lock_alert_budget / audience_page), so two
-- transactions never both take the last slot. A sent alert's budget_at is its sent_at; one that
-- is cancelled or fails gives its slot back (its status no longer counts).
ALTER TABLE notifications ADD COLUMN budget_at timestamptz;
UPDATE notifications SET budget_at = sent_at WHERE status = 'sent' AND sent_at > now() - interval '8 days';
-- Still one index by ambassador (feed, opt-out, budget); budget_at is included so that the
-- budget's lookup stays an index-only scan.
CREATE INDEX notifications_of_ambassador ON notifications (tenant, ambassador_id, sent_at) INCLUDE (status, budget_at);
DROP INDEX notifications_by_ambassador;
