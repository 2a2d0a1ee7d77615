-- A test service's own table: one row per effect of a handled event.
CREATE TABLE effects (
    id          bigserial PRIMARY KEY,
    tenant      text NOT NULL,
    external_id text NOT NULL,
    title       text NOT NULL
);
