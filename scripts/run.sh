#!/usr/bin/env bash
# run.sh BIN DATA_DIR: what `make run` does. Creates a local SQLite-backed
# instance in DATA_DIR on first use (printing its root key once), starts the
# demo upstream, creates a demo organisation and key, prints what to try,
# and runs the gateway in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$1
DATA=$2
PORT=${PORTCULLIS_PORT:-8080}
UPSTREAM_PORT=${PORTCULLIS_DEMO_UPSTREAM_PORT:-8081}
INGEST_PORT=${PORTCULLIS_INGEST_PORT:-8082}
CONSOLE_PORT=${PORTCULLIS_CONSOLE_PORT:-8083}
OPERATOR=operator@demo.example
GEO=$PWD/third_party/geoip/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb

if [ ! -f "$DATA/portcullis.conf" ]; then
	"$BIN" init --data-dir "$DATA" --listen "127.0.0.1:$PORT" \
		--upstream "http://127.0.0.1:$UPSTREAM_PORT" | tee "$DATA.init.txt"
	if [ -f "$GEO" ]; then printf '\n[geoip]\ndatabase = %s\n' "$GEO" >>"$DATA/portcullis.conf"; fi
	ROOT=$(grep -oE '[a-z]{2,8}_root_[0-9A-Z]{26}\.[0-9A-Za-z]{49}' "$DATA.init.txt")
	rm -f "$DATA.init.txt"
	echo "$ROOT" >"$DATA/root-key.txt"
	chmod 600 "$DATA/root-key.txt"
	echo "(the root key is also in $DATA/root-key.txt, readable only by you: delete it once stored)"
fi

# The SDK event ingest listener (docs/ingest.md), also for instances made before it existed.
if ! grep -q '^\[ingest\]' "$DATA/portcullis.conf"; then
	printf '\n[ingest]\nlisten = 127.0.0.1:%s\n' "$INGEST_PORT" >>"$DATA/portcullis.conf"
fi
INGEST_PORT=$(sed -n '/^\[ingest\]/,/^\[/s/^listen *= *[^:]*:\([0-9]*\).*/\1/p' "$DATA/portcullis.conf" | head -1)

# The browser console (docs/console.md): plain HTTP on loopback, and, since this demo sets up
# no SMTP server, sign-in mails printed on this terminal instead (dev_print_links).
if ! grep -q '^\[console\]' "$DATA/portcullis.conf"; then
	printf '\n[console]\nlisten = 127.0.0.1:%s\npublic_url = http://127.0.0.1:%s\ndev_print_links = true\n' \
		"$CONSOLE_PORT" "$CONSOLE_PORT" >>"$DATA/portcullis.conf"
fi
CONSOLE_PORT=$(sed -n '/^\[console\]/,/^\[/s/^listen *= *[^:]*:\([0-9]*\).*/\1/p' "$DATA/portcullis.conf" | head -1)
if [ ! -f "$DATA/demo-operator.txt" ]; then
	"$BIN" user create --email "$OPERATOR" --name "Demo operator" --operator \
		-c "$DATA/portcullis.conf" >"$DATA/demo-operator.txt"
fi
MAIL_URL=$(sed -n '/^\[mail\]/,/^\[/s/^url *= *\(.*\)/\1/p' "$DATA/portcullis.conf" | head -1)
if [ -n "$MAIL_URL" ]; then
	SIGN_IN="Sign-in links are mailed through $MAIL_URL ([mail] url)."
else
	SIGN_IN="No SMTP server is configured ([mail] url is empty), so when you ask for a sign-in
link serve prints it right here in this terminal instead of mailing it. Open it in the
same browser."
fi

/usr/bin/python3 scripts/demo_upstream.py "$UPSTREAM_PORT" &
UPSTREAM_PID=$!
"$BIN" serve -c "$DATA/portcullis.conf" &
GW_PID=$!
trap 'kill $GW_PID $UPSTREAM_PID 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

if [ -f "$DATA/root-key.txt" ] && [ ! -f "$DATA/demo-key.txt" ]; then
	ROOT=$(cat "$DATA/root-key.txt")
	ORG=$(curl -sf -H "Authorization: Bearer $ROOT" -H 'Content-Type: application/json' \
		-d '{"name":"Demo Org","contact_email":"security@demo.example"}' \
		"http://127.0.0.1:$PORT/v1/orgs" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	curl -sf -H "Authorization: Bearer $ROOT" -H 'Content-Type: application/json' \
		-d '{"name":"demo key","env":"test","scopes":["gateway","keys:read","keys:write","logs:read","webhooks:write"]}' \
		"http://127.0.0.1:$PORT/v1/orgs/$ORG/api-keys" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$DATA/demo-key.txt"
	chmod 600 "$DATA/demo-key.txt"
fi
KEY=$(cat "$DATA/demo-key.txt" 2>/dev/null || echo '<your key>')
# A demo project and its ingest key (events:ingest only, bound to the project).
if [ -f "$DATA/demo-key.txt" ] && [ ! -f "$DATA/ingest-key.txt" ]; then
	PROJECT=$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		-d '{"name":"Demo App"}' "http://127.0.0.1:$PORT/v1/projects" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
		-d '{"name":"demo app ingest key","env":"test","project_id":"'"$PROJECT"'","scopes":["events:ingest"]}' \
		"http://127.0.0.1:$PORT/v1/api-keys" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$DATA/ingest-key.txt"
	chmod 600 "$DATA/ingest-key.txt"
fi
INGEST_KEY=$(cat "$DATA/ingest-key.txt" 2>/dev/null || echo '<your ingest key>')

cat <<MSG

Portcullis is running on http://127.0.0.1:$PORT (demo upstream on :$UPSTREAM_PORT).
A demo organisation key is in $DATA/demo-key.txt. Try:

  curl -s http://127.0.0.1:$PORT/hello?x=1 -H "Authorization: Bearer $KEY"
  curl -s http://127.0.0.1:$PORT/v1/verify -H "Authorization: Bearer $KEY" -i
  curl -s http://127.0.0.1:$PORT/v1/api-keys -H "Authorization: Bearer $KEY"
  curl -s http://127.0.0.1:$PORT/v1/requests -H "Authorization: Bearer $KEY"
  curl -s http://127.0.0.1:$PORT/v1/webhook-endpoints -H "Authorization: Bearer $KEY" \
       -H 'Content-Type: application/json' -d '{"url":"https://hooks.example.com/portcullis"}'
  curl -s http://127.0.0.1:$PORT/v1/webhook-messages -H "Authorization: Bearer $KEY"
  curl -s http://127.0.0.1:$PORT/metrics

The SDK event ingest listens on http://127.0.0.1:$INGEST_PORT (ingest key in $DATA/ingest-key.txt).
Send an event as the Segment SDKs do (the email is stored only as its SHA-256), then read it:

  curl -s http://127.0.0.1:$INGEST_PORT/v1/track -u "$INGEST_KEY:" -H 'Content-Type: application/json' \
       -d '{"userId":"user-1","event":"Signed Up","context":{"traits":{"email":" Jane@Example.com"}}}'
  curl -s http://127.0.0.1:$PORT/v1/events -H "Authorization: Bearer $KEY"

The browser console is on http://127.0.0.1:$CONSOLE_PORT/console/ : sign in as the demo
operator, $OPERATOR.
$SIGN_IN

Stop with Ctrl-C.
MSG
wait $GW_PID
