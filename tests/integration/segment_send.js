#!/usr/bin/env node
// segment_send.js: send events to Portcullis's ingest listener with Segment's own Node SDK
// (npm @segment/analytics-node, pinned by scripts/deps.sh into third_party/segment), its
// `host` option pointed at the listener. stdin: {writeKey, host, events: [{method, params}]}
// where method is track, identify, page, screen, group or alias and params what the SDK's
// method takes; stdout: {messageIds: [...], errors: [...]}, the SDK's own view of each call
// once closeAndFlush() has delivered them.
"use strict";
const fs = require("fs");
const path = require("path");

const { Analytics } = require(
	path.join(__dirname, "../../third_party/segment/node_modules/@segment/analytics-node"));

async function main() {
	const input = JSON.parse(fs.readFileSync(0, "utf8"));
	const analytics = new Analytics({
		writeKey: input.writeKey,
		host: input.host,
		flushAt: 15,
		flushInterval: 200,
		maxRetries: 2,
	});
	const messageIds = [];
	const errors = [];
	analytics.on("error", (err) => errors.push(String(err && (err.reason || err.message || err))));
	for (const e of input.events) {
		analytics[e.method](e.params, (err, ctx) => {
			if (err) errors.push(String(err.reason || err.message || err));
			else messageIds.push(ctx.event.messageId);
		});
	}
	await analytics.closeAndFlush({ timeout: 20000 });
	process.stdout.write(JSON.stringify({ messageIds, errors }));
}

main().catch((err) => {
	process.stderr.write(String(err && err.stack || err));
	process.exit(1);
});
