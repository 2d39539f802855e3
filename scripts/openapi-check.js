#!/usr/bin/env node
// openapi-check.js SPEC [JSON_OUT]: validate an OpenAPI document with
// @apidevtools/swagger-parser (the OpenAPI 3.1 JSON Schema plus its own
// checks: $refs resolve, operationIds and parameters are unique, ...), from
// third_party/openapi, where scripts/deps.sh installs it. Exit 0 when valid,
// 1 with the reasons on stderr. With JSON_OUT, also write the parsed
// document there as JSON (tests/integration/test_openapi.py reads that).
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.resolve(__dirname, "..");
const SwaggerParser = require(
	path.join(root, "third_party/openapi/node_modules/@apidevtools/swagger-parser"));

const [spec, jsonOut] = process.argv.slice(2);
if (!spec) {
	console.error("usage: openapi-check.js SPEC [JSON_OUT]");
	process.exit(2);
}
SwaggerParser.validate(spec)
	.then(async () => {
		// validate() dereferences what it returns: parse again for the document as written.
		const doc = await SwaggerParser.parse(spec);
		if (jsonOut)
			fs.writeFileSync(jsonOut, JSON.stringify(doc));
		const n = Object.values(doc.paths).reduce(
			(a, item) => a + Object.keys(item).filter((k) => k !== "parameters").length, 0);
		console.log(`openapi: ${spec} is valid OpenAPI ${doc.openapi} (${n} operations)`);
	})
	.catch((err) => {
		console.error(`openapi: ${spec} is not valid: ${err.message}`);
		process.exit(1);
	});
