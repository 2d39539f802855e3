-- 0007: usage rollups, budgets, and what the request log keeps of refused
-- attempts (INCIDENT.md, store_usage.h). Portable SQL.
--
-- request_log.route: the route that answered (an API route's pattern, or
-- "proxy:<[route] name>" / "proxy:default" for forwarded traffic), a
-- bounded label unlike path. request_log.refusal: why authentication
-- refused the request (no_credential, bad_format, wrong_secret, guard,
-- killed, revoked, expired, forbidden), NULL when it did not; key_id then
-- still names the key the credential named. Never an IP.
ALTER TABLE request_log ADD COLUMN route TEXT;
ALTER TABLE request_log ADD COLUMN refusal TEXT;
-- Per-key windows (the incident report's refused attempts and raw rows).
CREATE INDEX request_log_key_at ON request_log(key_id, received_at);

-- Rollups, written by the request-log writer in the transaction that
-- inserts the rows they count (only rows actually inserted: a retried
-- batch counts nothing twice). bucket: the window's start in ms (UTC).
-- Dimensions are '' (never NULL) when absent, so the primary key
-- identifies one cell on both backends; status is the HTTP status (0: none
-- sent). Counts add up: errors_4xx/errors_5xx by status class, bytes in and
-- out, duration_ms_sum. A day is the sum of its 24 hours. Kept [retention]
-- usage_days.
CREATE TABLE usage_minute (
	org_id TEXT NOT NULL,
	bucket BIGINT NOT NULL,
	project_id TEXT NOT NULL,
	key_id TEXT NOT NULL,
	route TEXT NOT NULL,
	status INTEGER NOT NULL,
	region TEXT NOT NULL,
	refusal TEXT NOT NULL,
	requests BIGINT NOT NULL,
	errors_4xx BIGINT NOT NULL,
	errors_5xx BIGINT NOT NULL,
	bytes_in BIGINT NOT NULL,
	bytes_out BIGINT NOT NULL,
	duration_ms_sum BIGINT NOT NULL,
	PRIMARY KEY (org_id, bucket, project_id, key_id, route, status, region, refusal)
);
CREATE INDEX usage_minute_key ON usage_minute(key_id, bucket);

CREATE TABLE usage_hour (
	org_id TEXT NOT NULL,
	bucket BIGINT NOT NULL,
	project_id TEXT NOT NULL,
	key_id TEXT NOT NULL,
	route TEXT NOT NULL,
	status INTEGER NOT NULL,
	region TEXT NOT NULL,
	refusal TEXT NOT NULL,
	requests BIGINT NOT NULL,
	errors_4xx BIGINT NOT NULL,
	errors_5xx BIGINT NOT NULL,
	bytes_in BIGINT NOT NULL,
	bytes_out BIGINT NOT NULL,
	duration_ms_sum BIGINT NOT NULL,
	PRIMARY KEY (org_id, bucket, project_id, key_id, route, status, region, refusal)
);
CREATE INDEX usage_hour_key ON usage_hour(key_id, bucket);

-- Per key and hour, the user agents (cut at 256 bytes; '' when none sent).
-- refused: those of the requests that authentication refused.
CREATE TABLE usage_key_agents (
	key_id TEXT NOT NULL,
	bucket BIGINT NOT NULL,
	user_agent TEXT NOT NULL,
	org_id TEXT NOT NULL,
	requests BIGINT NOT NULL,
	refused BIGINT NOT NULL,
	PRIMARY KEY (key_id, bucket, user_agent)
);
CREATE INDEX usage_key_agents_bucket ON usage_key_agents(bucket);

-- Per key, when each region and each user agent was first and last seen
-- in traffic the key authenticated (refused attempts excluded: someone
-- else naming the key is not the key being used from there). kind: region
-- | user_agent. Kept while last_seen is within usage_days.
CREATE TABLE usage_key_seen (
	key_id TEXT NOT NULL,
	kind TEXT NOT NULL,
	value TEXT NOT NULL,
	org_id TEXT NOT NULL,
	first_seen BIGINT NOT NULL,
	last_seen BIGINT NOT NULL,
	requests BIGINT NOT NULL,
	PRIMARY KEY (key_id, kind, value)
);

-- Requests per project and calendar month (UTC, 'YYYY-MM'): the budget's
-- counter, one row lookup per project per writer batch.
CREATE TABLE usage_month (
	project_id TEXT NOT NULL,
	month TEXT NOT NULL,
	org_id TEXT NOT NULL,
	requests BIGINT NOT NULL,
	PRIMARY KEY (project_id, month)
);

-- A project's budget (PATCH /v1/projects/{id} {budget}); notify_at: the
-- thresholds in percent, comma-separated, ascending.
CREATE TABLE project_budgets (
	project_id TEXT PRIMARY KEY REFERENCES projects(id),
	requests_per_month BIGINT NOT NULL,
	notify_at TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- One row per threshold crossed per project and month: the conditional
-- insert that makes usage.budget_threshold go out once, whichever writer
-- batch or node crosses it first.
CREATE TABLE budget_notices (
	project_id TEXT NOT NULL,
	month TEXT NOT NULL,
	threshold INTEGER NOT NULL,
	requests BIGINT NOT NULL,
	at BIGINT NOT NULL,
	PRIMARY KEY (project_id, month, threshold)
);
