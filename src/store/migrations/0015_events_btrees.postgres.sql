-- 0015: fewer indexes written per ingested event (issue 11's benchmark),
-- PostgreSQL form. An event's id is "ev_" and the ULID of its received_at
-- (store_events.c checks it), so since/until and the retention purge are
-- id ranges on the indexes GET /v1/events walks anyway (events_org,
-- events_project, events_project_type, events_user, the primary key); the
-- index on received_at goes. Rows stored before this migration carry an id
-- whose time can be a few ms after their received_at; store_events.c keeps
-- the received_at condition beside the range. (The SQLite form also
-- rebuilds event_dedupe WITHOUT ROWID, which PostgreSQL has no use for.)
DROP INDEX events_received;
