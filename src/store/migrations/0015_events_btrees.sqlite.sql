-- 0015: fewer b-trees written per ingested event (issue 11's benchmark),
-- SQLite form. Both forms drop events_received: an event's id is "ev_" and
-- the ULID of its received_at (store_events.c checks it), so since/until
-- and the retention purge are id ranges on the indexes GET /v1/events walks
-- anyway (events_org, events_project, events_project_type, events_user, the
-- primary key). Rows stored before this migration carry an id whose time
-- can be a few ms after their received_at (it was read from the clock
-- again); store_events.c keeps the received_at condition beside the range.
DROP INDEX events_received;

-- event_dedupe WITHOUT ROWID: its rows live in the primary key's b-tree
-- (project_id, message_id) instead of a rowid table beside that key, one
-- b-tree less per claim. PostgreSQL has no rowid table: its form keeps
-- 0006's. Rebuilt as SQLite's ALTER TABLE cannot change it in place.
CREATE TABLE event_dedupe_0015 (
	project_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	received_at BIGINT NOT NULL,
	PRIMARY KEY (project_id, message_id)
) WITHOUT ROWID;
INSERT INTO event_dedupe_0015 (project_id, message_id, received_at)
	SELECT project_id, message_id, received_at FROM event_dedupe;
DROP TABLE event_dedupe;
ALTER TABLE event_dedupe_0015 RENAME TO event_dedupe;
CREATE INDEX event_dedupe_received ON event_dedupe(received_at);
