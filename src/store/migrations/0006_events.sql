-- 0006: SDK events (INGEST.md, store_events.h). Portable SQL: BIGINT
-- millisecond timestamps, TEXT ids (ev_ + ULID, so ids sort by received
-- time and cursor pages walk the primary key). No row holds a plaintext
-- email, phone, IP or advertising id: src/ingest/ hashed or dropped them.

-- One row per stored event. "" members of struct store_event are NULL.
-- body: the event's JSON with the identifiers already hashed or removed.
-- No uniqueness on (project_id, message_id) here: a messageId seen again
-- after the 24 h dedupe window is stored again (event_dedupe decides).
CREATE TABLE events (
	id TEXT PRIMARY KEY,
	org_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	key_id TEXT,
	message_id TEXT NOT NULL,
	type TEXT NOT NULL,
	event TEXT,
	user_id TEXT,
	anonymous_id TEXT,
	email_sha256 TEXT,
	phone_sha256 TEXT,
	region TEXT,
	timestamp BIGINT NOT NULL,
	received_at BIGINT NOT NULL,
	body TEXT NOT NULL
);
-- GET /v1/events: newest first by id within an organisation or a project,
-- optionally of one type; by user (only rows with one); since/until and
-- the retention purge by received_at.
CREATE INDEX events_org ON events(org_id, id);
CREATE INDEX events_project ON events(project_id, id);
CREATE INDEX events_project_type ON events(project_id, type, id);
CREATE INDEX events_user ON events(user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX events_received ON events(received_at);

-- The dedupe claims: one row per (project, messageId), the received_at of
-- the event last stored under it. The primary key is the unique
-- constraint that makes dedupe hold across nodes: an insert upserts its
-- claim (taken again only when the stored one is older than the window)
-- inside the events' transaction, so of two concurrent inserts of one
-- messageId on PostgreSQL the second waits for the first's row and then
-- sees it. Purged once past the window (store_events_dedupe_purge).
CREATE TABLE event_dedupe (
	project_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	received_at BIGINT NOT NULL,
	PRIMARY KEY (project_id, message_id)
);
CREATE INDEX event_dedupe_received ON event_dedupe(received_at);

-- Advertising ids, sealed (pcs1:...), held for the CAPI forward only:
-- deleted when it succeeds or gives up (store_events_adids_delete), and
-- with their event by the retention purge at the latest.
CREATE TABLE event_adids (
	event_id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	adid_sealed TEXT NOT NULL,
	received_at BIGINT NOT NULL
);
