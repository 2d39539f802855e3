#!/usr/bin/env node
// oidc_provider.mjs: a real, certified OpenID provider for tests/integration/test_oidc.py:
// panva's oidc-provider (npm, pinned by scripts/deps.sh into third_party/oidc-provider),
// served over HTTPS on loopback with the test CA's certificate.
//
//   node oidc_provider.mjs CONFIG.json
//
// CONFIG: {port, cert, key, clients: [{client_id, client_secret, redirect_uris,
// token_endpoint_auth_method, id_token_signed_response_alg}], accounts: {id: {email,
// email_verified, name}}, verified_claim}. Prints "READY <issuer>" once it listens.
// verified_claim (default "email_verified") is the claim the email scope releases
// beside email, read from each account under that name: "xms_edov" makes a provider
// that, like Microsoft Entra ID, never sends email_verified.
//
// Logging in without a browser: the interaction URL is handled here (not by the
// provider's devInteractions form): the login prompt is finished as the account the
// test chose last (POST /__test/control {"login": id}), the consent prompt grants the
// scopes asked for. Everything else (discovery, the authorization endpoint with PKCE,
// codes, the token endpoint and its client authentication, ID tokens, the JWKS) is
// the library's own.
//
// What the test can change (POST /__test/control, JSON, each optional):
//  - login: the account the next login prompt is finished as;
//  - clock_offset_s: seconds added to the provider's clock (Date.now) from now on, so
//    that a token endpoint call issues an ID token whose iat/exp lie that far off: an
//    expired ID token made by the provider itself;
//  - resign_aud: a string; when set, each token endpoint response's id_token is signed
//    again, by this provider's own RS256 key (the one its JWKS serves), with aud
//    replaced by it. oidc-provider always issues aud = the client's own id, so this is
//    the one case the test shapes itself (test_oidc.py says so).
"use strict";
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.join(here, "../../third_party/oidc-provider/node_modules");
const { default: Provider } = await import(
	pathToFileURL(path.join(modules, "oidc-provider/lib/index.js")).href);
const jose = await import(pathToFileURL(path.join(modules, "jose/dist/webapi/index.js")).href);

const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const issuer = `https://127.0.0.1:${config.port}`;

const realNow = Date.now;
let clockOffsetMs = 0;
Date.now = () => realNow() + clockOffsetMs;

let nextLogin = null;
let resignAud = null;

async function signingKey(alg, kid) {
	const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
	const jwk = await jose.exportJWK(privateKey);
	return { ...jwk, kid, alg, use: "sig" };
}
const rsaJwk = await signingKey("RS256", "op-rsa-1");
const ecJwk = await signingKey("ES256", "op-ec-1");
const rsaKey = await jose.importJWK(rsaJwk, "RS256");

const accounts = config.accounts;
const verifiedClaim = config.verified_claim || "email_verified";
const provider = new Provider(issuer, {
	clients: config.clients.map((c) => ({
		grant_types: ["authorization_code"],
		response_types: ["code"],
		...c,
	})),
	jwks: { keys: [rsaJwk, ecJwk] },
	cookies: { keys: ["portcullis-test-only"] },
	claims: { openid: ["sub"], email: ["email", verifiedClaim], profile: ["name"] },
	features: { devInteractions: { enabled: false } },
	pkce: { required: () => true },
	ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 60, Interaction: 3600,
		Session: 86400, Grant: 86400 },
	interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
	async findAccount(ctx, id) {
		const a = accounts[id];
		if (!a)
			return undefined;
		return {
			accountId: id,
			async claims() {
				return { sub: id, email: a.email, [verifiedClaim]: a[verifiedClaim], name: a.name };
			},
		};
	},
});
provider.proxy = false;

async function readJson(req) {
	const chunks = [];
	for await (const c of req)
		chunks.push(c);
	return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

provider.use(async (ctx, next) => {
	if (ctx.path === "/__test/control" && ctx.method === "POST") {
		const c = await readJson(ctx.req);
		if ("login" in c)
			nextLogin = c.login;
		if ("clock_offset_s" in c)
			clockOffsetMs = c.clock_offset_s * 1000;
		if ("resign_aud" in c)
			resignAud = c.resign_aud;
		ctx.body = { ok: true };
		return;
	}
	if (ctx.path.startsWith("/interaction/") && ctx.method === "GET") {
		const details = await provider.interactionDetails(ctx.req, ctx.res);
		ctx.respond = false; // interactionFinished writes the 303 itself
		if (details.prompt.name === "login") {
			await provider.interactionFinished(ctx.req, ctx.res,
				{ login: { accountId: nextLogin } }, { mergeWithLastSubmission: false });
			return;
		}
		const grant = new provider.Grant({ accountId: details.session.accountId,
			clientId: details.params.client_id });
		grant.addOIDCScope(details.params.scope);
		const grantId = await grant.save();
		await provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } },
			{ mergeWithLastSubmission: true });
		return;
	}
	await next();
	if (ctx.path === "/token" && resignAud !== null && ctx.body && ctx.body.id_token) {
		const claims = jose.decodeJwt(ctx.body.id_token);
		claims.aud = resignAud;
		ctx.body = { ...ctx.body, id_token: await new jose.SignJWT(claims)
			.setProtectedHeader({ alg: "RS256", kid: rsaJwk.kid, typ: "JWT" }).sign(rsaKey) };
	}
});

https.createServer({ key: fs.readFileSync(config.key), cert: fs.readFileSync(config.cert) },
	provider.callback()).listen(config.port, "127.0.0.1", () => {
	process.stdout.write(`READY ${issuer}\n`);
});
