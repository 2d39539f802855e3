-- bench/ingest.lua: wrk POSTs /v1/batch bodies of BATCH (env, default 100)
-- realistic Segment events (email, phone, context.ip, advertisingId, properties).
-- Every event gets a messageId of its own (thread id, request and event
-- counters), so dedupe never answers for a write. Counts the 200s (durable:
-- Portcullis answers after the group commit) and the other statuses.
local threads = {}
local counter = 1

function setup(thread)
	thread:set("tid", counter)
	counter = counter + 1
	table.insert(threads, thread)
end

local batch = tonumber(os.getenv("BATCH") or "100")
local key = os.getenv("INGEST_KEY")
local seq = 0
local prefix

function init(args)
	ok, refused = 0, 0
	-- Unique across runs and threads: the wall clock and this thread's number.
	prefix = string.format("b%d-%d-%d", batch, os.time(), tid)
end

local function event(n)
	local u = n % 50000
	return string.format(
		'{"type":"track","event":"Order Completed","messageId":"%s-%d","userId":"user-%d",' ..
		'"anonymousId":"anon-%08d","timestamp":"2026-12-02T08:00:00.000Z",' ..
		'"context":{"ip":"203.0.113.%d","traits":{"email":"User%d@Example.com",' ..
		'"phone":"+1 650 555 %04d"},"device":{"advertisingId":"6D92078A-8246-4BA4-AE5B-76104861E7DC"},' ..
		'"library":{"name":"analytics.js","version":"2.11.1"},"locale":"en-US",' ..
		'"userAgent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"},' ..
		'"properties":{"order_id":"ord_%d","total":129.95,"currency":"EUR","products":' ..
		'[{"sku":"sku-1","price":99.95,"quantity":1},{"sku":"sku-2","price":30,"quantity":2}]}}',
		prefix, n, u, u, n % 250 + 1, u, u % 10000, n)
end

function request()
	local evs = {}
	for i = 1, batch do
		seq = seq + 1
		evs[i] = event(seq)
	end
	return wrk.format("POST", "/v1/batch", {
		["Content-Type"] = "application/json",
		["Authorization"] = "Bearer " .. key,
	}, '{"batch":[' .. table.concat(evs, ",") .. ']}')
end

function response(status, headers, body)
	if status == 200 then ok = ok + 1 else refused = refused + 1 end
end

function done(summary, latency, requests)
	local o, r = 0, 0
	for _, t in ipairs(threads) do o = o + t:get("ok"); r = r + t:get("refused") end
	io.write(string.format("acknowledged %d refused %d batch %d\n", o, r, batch))
end
