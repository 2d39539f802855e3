-- 0013: usage series, the rollups GET /v1/usage reads for hours and days
-- (store_usage_series.c). Portable SQL.
--
-- usage_hour holds one cell per hour and combination of every dimension
-- (project, key, route, status, region, refusal): about as many cells as
-- rows when traffic is spread thin, so a project's 30 days were hundreds of
-- thousands of cells to group at query time. A series row is one hour of
-- one dimension's value: project_id is the project ('' for keys of no
-- project) or '*' for the whole organisation; dim is '' (totals),
-- 'project', 'key', 'route', 'status' or 'region'; value is that
-- dimension's value ('' for totals; the status as text). A project's 30
-- days by hour are 720 rows.
--
-- The series are compacted from usage_hour for closed hours by the
-- retention thread (store_usage_compact), never by the request-log writer,
-- so the writer's cost does not change. usage_compacted.through: every
-- hour before it is in the series; a query reads the series before it and
-- usage_hour from it on. A row the writer adds to an hour before through (a
-- late batch) marks the hour in usage_dirty, and the next compaction
-- rebuilds that hour.
CREATE TABLE usage_series (
	org_id TEXT NOT NULL,
	project_id TEXT NOT NULL,
	dim TEXT NOT NULL,
	bucket BIGINT NOT NULL,
	value TEXT NOT NULL,
	requests BIGINT NOT NULL,
	errors_4xx BIGINT NOT NULL,
	errors_5xx BIGINT NOT NULL,
	bytes_in BIGINT NOT NULL,
	bytes_out BIGINT NOT NULL,
	duration_ms_sum BIGINT NOT NULL,
	PRIMARY KEY (org_id, project_id, dim, bucket, value)
);
-- Rebuilding an hour and the retention purge.
CREATE INDEX usage_series_bucket ON usage_series(bucket);

CREATE TABLE usage_compacted (
	id INTEGER PRIMARY KEY,
	through BIGINT NOT NULL
);
INSERT INTO usage_compacted (id, through) VALUES (1, 0);

CREATE TABLE usage_dirty (
	bucket BIGINT PRIMARY KEY
);
