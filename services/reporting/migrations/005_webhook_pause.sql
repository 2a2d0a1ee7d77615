-- KPI webhook subscriptions can be paused (by an admin, or automatically after failing attempts
-- in a row: a dead endpoint is no longer retried forever) and resumed.
ALTER TABLE webhook_subscriptions ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE webhook_subscriptions ADD COLUMN paused_at timestamptz;
ALTER TABLE webhook_subscriptions ADD COLUMN paused_reason text;
ALTER TABLE webhook_subscriptions ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
