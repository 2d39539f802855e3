-- 0004: the webhook outbox (WEBHOOKS.md, store_webhooks.h). Portable SQL:
-- BIGINT millisecond timestamps, TEXT ids (ep_/msg_/dlv_/att_ + ULID, so
-- ids sort by creation time and the retention purge walks primary keys).

-- Endpoints are soft-deleted (deleted_at) so their records stay.
-- event_types: space-separated, NULL = every type; project_id NULL = every
-- project's messages and organisation-wide ones. secret and prev_secret are
-- sealed (pcs1:...), never plaintext.
CREATE TABLE webhook_endpoints (
	id TEXT PRIMARY KEY,
	org_id TEXT NOT NULL REFERENCES orgs(id),
	project_id TEXT REFERENCES projects(id),
	url TEXT NOT NULL,
	description TEXT,
	event_types TEXT,
	rate_limit_per_second BIGINT,
	secret TEXT NOT NULL,
	prev_secret TEXT,
	prev_expires_at BIGINT,
	disabled_at BIGINT,
	disabled_reason TEXT,
	failing_since BIGINT,
	failing_notified_at BIGINT,
	deleted_at BIGINT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints(org_id, id);

-- One row per message, written with the change that causes it or by a
-- publish. org_id NULL: a global event, for every organisation. body is
-- the exact bytes every receiver gets (NULL once purged). fanned_out: 0
-- until the worker has made its deliveries. Idempotency keys are unique
-- per organisation (NULL keys never collide).
CREATE TABLE webhook_messages (
	id TEXT PRIMARY KEY,
	org_id TEXT,
	project_id TEXT,
	type TEXT NOT NULL,
	body TEXT,
	idempotency_key TEXT,
	request_hash TEXT,
	fanned_out INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_messages_idem ON webhook_messages(org_id, idempotency_key);
CREATE INDEX webhook_messages_org ON webhook_messages(org_id, id);
CREATE INDEX webhook_messages_unfanned ON webhook_messages(fanned_out, id);

-- One row per (message, target): target is the endpoint id, or
-- 'mail:<org_id>' for the mail channel (endpoint_id NULL). org_id is the
-- receiving organisation (for a global message, the endpoint's). status
-- pending | succeeded | failed. A claim sets lease_owner and lease_until
-- and moves next_attempt_at to lease_until, so the claim index's range
-- (pending, due) holds no delivery in flight, and one whose worker died is
-- due again when its lease ends.
CREATE TABLE webhook_deliveries (
	id TEXT PRIMARY KEY,
	message_id TEXT NOT NULL,
	org_id TEXT NOT NULL,
	target TEXT NOT NULL,
	channel TEXT NOT NULL,
	endpoint_id TEXT,
	status TEXT NOT NULL,
	attempts BIGINT NOT NULL DEFAULT 0,
	next_attempt_at BIGINT,
	lease_until BIGINT,
	lease_owner TEXT,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (message_id, target)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);

-- Every attempt: outcome succeeded | failed, error a class (timeout,
-- connect, tls, dns, egress_refused, status, too_large), response the
-- first 1 KiB of the body (text). Never a header, a secret or an address.
CREATE TABLE webhook_attempts (
	id TEXT PRIMARY KEY,
	delivery_id TEXT NOT NULL,
	message_id TEXT NOT NULL,
	endpoint_id TEXT,
	org_id TEXT NOT NULL,
	channel TEXT NOT NULL,
	at BIGINT NOT NULL,
	outcome TEXT NOT NULL,
	http_status INTEGER,
	duration_ms BIGINT NOT NULL,
	error TEXT,
	response TEXT,
	next_attempt_at BIGINT
);
CREATE INDEX webhook_attempts_message ON webhook_attempts(message_id, id);
