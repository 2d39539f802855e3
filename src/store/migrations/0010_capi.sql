-- 0010: the Meta Conversions API forward (INGEST.md "Forwarding to ad
-- platforms", store_capi.h). Portable SQL: BIGINT millisecond timestamps,
-- TEXT ids (capb_ + ULID for batches, so they sort by creation time).

-- One row per project that has set the forward up. enabled 0/1 (off by
-- default: no row is off). access_token is sealed (pcs1:..., context
-- capi_configs / access_token / project id / org id), never plaintext.
-- enabled_since: when it was last switched on; events received before it
-- are not forwarded. scan_from: the forward has claimed every event
-- received before it (a floor that keeps the claim's scan short).
CREATE TABLE capi_configs (
	project_id TEXT PRIMARY KEY REFERENCES projects(id),
	org_id TEXT NOT NULL REFERENCES orgs(id),
	enabled INTEGER NOT NULL DEFAULT 0,
	pixel_id TEXT NOT NULL,
	access_token TEXT NOT NULL,
	test_event_code TEXT,
	enabled_since BIGINT,
	scan_from BIGINT NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX capi_configs_enabled ON capi_configs(enabled);

-- One row per batch of at most 1000 events sent to one pixel, and its
-- outcome: status pending | succeeded | failed; attempts made; the last
-- attempt's HTTP status, error class and first 1 KiB of the answer (never
-- the token). A claim sets lease_owner/lease_until and moves
-- next_attempt_at to lease_until, so the due range holds nothing in
-- flight and a dead worker's batch is due again when its lease ends.
CREATE TABLE capi_batches (
	id TEXT PRIMARY KEY,
	org_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	pixel_id TEXT NOT NULL,
	status TEXT NOT NULL,
	events BIGINT NOT NULL,
	events_sent BIGINT,
	events_received BIGINT,
	attempts BIGINT NOT NULL DEFAULT 0,
	http_status BIGINT,
	error TEXT,
	response TEXT,
	next_attempt_at BIGINT NOT NULL,
	lease_owner TEXT,
	lease_until BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX capi_batches_due ON capi_batches(status, next_attempt_at);
CREATE INDEX capi_batches_project ON capi_batches(project_id, id);

-- Which batch holds an event: the primary key is the claim (an event is
-- put in one batch only, also with several nodes on PostgreSQL).
CREATE TABLE capi_batch_events (
	event_id TEXT PRIMARY KEY,
	batch_id TEXT NOT NULL,
	received_at BIGINT NOT NULL
);
CREATE INDEX capi_batch_events_batch ON capi_batch_events(batch_id);
CREATE INDEX capi_batch_events_received ON capi_batch_events(received_at);
