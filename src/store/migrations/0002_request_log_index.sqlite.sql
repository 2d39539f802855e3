-- 0002 (SQLite only): drop request_log_org_at, which SQLite never uses.
--
-- GET /v1/requests filters by organisation optionally ("? IS NULL OR
-- org_id = ?") and reads newest first by request_id; SQLite plans such a
-- statement once, without the values, so it walks request_id's unique index
-- backwards and tests org_id on each row. request_log_org_at was therefore
-- a fourth B-tree insert for every request-log row (about a fifth of the
-- row's cost) that no query read. request_id's index (order, duplicates)
-- and request_log_at (the retention purge) stay.
--
-- PostgreSQL keeps it: it plans each call with its values and can use it
-- for one organisation's rows.

DROP INDEX IF EXISTS request_log_org_at;
