-- The outbox's headers are only written (by COPY) and read back whole by the relay: json keeps
-- the text as written, where jsonb parses it into its binary form on every insert and prints it
-- again on every read (a 100k fan-out spent a good part of its outbox COPY there). The ->>
-- operators work on json as well.
ALTER TABLE outbox ALTER COLUMN headers TYPE json USING headers::json;
