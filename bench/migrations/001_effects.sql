-- The benchmark service's own table: one row per handled notification.sent event.
CREATE TABLE effects (
    id              bigserial PRIMARY KEY,
    tenant          text NOT NULL,
    notification_id text NOT NULL,
    ambassador_id   text NOT NULL
);
