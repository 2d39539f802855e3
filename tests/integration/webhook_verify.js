#!/usr/bin/env node
// webhook_verify.js: check Standard Webhooks signatures with the reference
// library (npm standardwebhooks, pinned by scripts/deps.sh into
// third_party/standardwebhooks). stdin: a JSON array of
// {body_b64, headers: {webhook-id, webhook-timestamp, webhook-signature}, secret, now?};
// stdout: a JSON array of {ok, error, payload}, one per case, in order: the
// result of `new Webhook(secret).verify(body, headers)`. `now` (Unix seconds)
// sets the clock the library checks the timestamp against (the published test
// vector is from 2021); without it the real clock is used.
"use strict";
const fs = require("fs");
const path = require("path");

const { Webhook } = require(
	path.join(__dirname, "../../third_party/standardwebhooks/node_modules/standardwebhooks"));

const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const realNow = Date.now;
const out = cases.map((c) => {
	Date.now = c.now === undefined ? realNow : () => c.now * 1000;
	try {
		const payload = new Webhook(c.secret).verify(Buffer.from(c.body_b64, "base64"), c.headers);
		return { ok: true, error: null, payload: payload === undefined ? null : payload };
	} catch (e) {
		return { ok: false, error: String(e.message || e), payload: null };
	} finally {
		Date.now = realNow;
	}
});
process.stdout.write(JSON.stringify(out));
