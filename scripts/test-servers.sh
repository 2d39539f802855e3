#!/usr/bin/env bash
# test-servers.sh: private PostgreSQL and Redis instances for the test suites.
#
#   eval "$(scripts/test-servers.sh start [--owner PID] [DIR])"
#   trap 'scripts/test-servers.sh stop "$PORTCULLIS_TEST_SERVERS_DIR"' EXIT
#   ... run tests: PORTCULLIS_TEST_PG_URL and PORTCULLIS_TEST_REDIS_URL are set ...
#   scripts/test-servers.sh stop DIR
#   scripts/test-servers.sh pg-stop|pg-start|redis-stop|redis-start DIR
#
# start prints eval-able `export` lines (PORTCULLIS_TEST_SERVERS_DIR,
# PORTCULLIS_TEST_PG_URL, PORTCULLIS_TEST_REDIS_URL) on stdout and everything
# else on stderr. Both servers listen on free ports of 127.0.0.1 only, keep
# their data in a temp dir (DIR, or a new one) and trade durability for speed
# (fsync off, no Redis persistence). PostgreSQL has a database
# portcullis_test owned by the user portcullis (password portcullis, a test
# value only), who may create databases (the pytest harness makes one per
# instance). As root, PostgreSQL runs as the postgres user.
#
# Idempotent: start on a DIR whose servers are running (or with
# PORTCULLIS_TEST_SERVERS_DIR set to one) prints the same exports again;
# stop on a stopped or missing DIR succeeds.
#
# pg-stop / redis-stop stop one server of a running DIR (its data stays) and
# pg-start / redis-start start it again on the same port: outage tests use
# them on a DIR of their own, never on one that other tests share.
#
# The servers also stop by themselves: when the --owner process (or
# $PORTCULLIS_TEST_SERVERS_OWNER) exits, and in any case after
# $PORTCULLIS_TEST_SERVERS_TTL seconds (default 7200).
set -euo pipefail

MARKER=.portcullis-test-servers
PG_USER=portcullis
PG_PASS=portcullis
PG_DB=portcullis_test
SELF=$(readlink -f "$0")

log() { printf 'test-servers: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# The newest PostgreSQL server binaries: Debian keeps them out of PATH.
pg_bindir() {
	if [[ -n ${PG_BINDIR:-} ]]; then
		echo "$PG_BINDIR"
		return
	fi
	local d best=''
	for d in /usr/lib/postgresql/*/bin /usr/pgsql-*/bin; do
		[[ -x $d/initdb && -x $d/pg_ctl ]] && best=$(printf '%s\n%s\n' "$best" "$d" | sort -V | tail -n1)
	done
	if [[ -z $best ]] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
		best=$(dirname "$(command -v initdb)")
	fi
	[[ -n $best ]] || die "PostgreSQL server binaries not found (install postgresql, or set PG_BINDIR)"
	echo "$best"
}

# Run a command as the PostgreSQL owner: postgres when we are root.
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

free_ports() {
	/usr/bin/python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

print_exports() {
	local dir=$1
	printf "export PORTCULLIS_TEST_SERVERS_DIR='%s'\n" "$dir"
	printf "export PORTCULLIS_TEST_PG_URL='%s'\n" "$(cat "$dir/pg.url")"
	printf "export PORTCULLIS_TEST_REDIS_URL='%s'\n" "$(cat "$dir/redis.url")"
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

redis_pid() { if [[ -s $1/redis.pid ]]; then cat "$1/redis.pid"; fi; }

pg_running() {
	local dir=$1
	[[ -d $dir/pg ]] || return 1
	as_pg "$(pg_bindir)/pg_ctl" status -D "$dir/pg" >/dev/null 2>&1
}

# True when DIR holds servers we started that still answer.
running() {
	local dir=$1
	[[ -f $dir/$MARKER && -f $dir/pg.url && -f $dir/redis.url ]] || return 1
	pg_running "$dir" && pid_alive "$(redis_pid "$dir")"
}

cmd_stop() {
	local dir=${1:-${PORTCULLIS_TEST_SERVERS_DIR:-}}
	[[ -n $dir ]] || die "usage: $0 stop DIR"
	if [[ ! -d $dir ]]; then
		return 0
	fi
	[[ -f $dir/$MARKER ]] || die "$dir was not made by test-servers.sh; not touching it"
	dir=$(readlink -f "$dir")

	# The watchdog first, unless it is the one stopping us.
	local wd=''
	[[ -s $dir/watchdog.pid ]] && wd=$(cat "$dir/watchdog.pid")
	if [[ -n $wd && $wd != "${TEST_SERVERS_WATCHDOG:-}" ]] && pid_alive "$wd"; then
		kill "$wd" 2>/dev/null || true
	fi

	if [[ -f $dir/pg/postmaster.pid ]]; then
		pg_ctl_stop "$dir"
	fi
	redis_stop "$dir"
	rm -rf -- "$dir"
	log "stopped and removed $dir"
}

# Start the cluster in DIR/pg (made by start_pg) and wait until it accepts connections.
pg_ctl_start() {
	local dir=$1
	as_pg "$(pg_bindir)/pg_ctl" start -D "$dir/pg" -l "$dir/pg.log" -w -t 30 >/dev/null 2>&1 || {
		tail -n 20 "$dir/pg.log" >&2 || true
		die "PostgreSQL did not start"
	}
}

# Stop the cluster in DIR/pg: fast (sessions are terminated), else immediate.
pg_ctl_stop() {
	local dir=$1
	as_pg "$(pg_bindir)/pg_ctl" stop -D "$dir/pg" -m fast -w -t 30 >>"$dir/pg.log" 2>&1 ||
		as_pg "$(pg_bindir)/pg_ctl" stop -D "$dir/pg" -m immediate -w -t 30 \
			>>"$dir/pg.log" 2>&1 || log "PostgreSQL in $dir did not stop"
}

start_pg() {
	local dir=$1 port=$2 bin
	bin=$(pg_bindir)
	printf '%s\n' "postgres" >"$dir/pg.superpass"
	chmod 600 "$dir/pg.superpass"
	if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir/pg.superpass"; fi
	as_pg "$bin/initdb" -D "$dir/pg" -U postgres --pwfile="$dir/pg.superpass" \
		--auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale \
		>"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		die "initdb failed"
	}
	# Loopback only; a socket in our own dir; durability off for speed.
	cat >>"$dir/pg/postgresql.conf" <<EOF

# test-servers.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
EOF
	pg_ctl_start "$dir"
	as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres \
		>/dev/null <<EOF || die "cannot create the test database"
CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASS';
CREATE DATABASE $PG_DB OWNER $PG_USER;
EOF
	echo "postgres://$PG_USER:$PG_PASS@127.0.0.1:$port/$PG_DB" >"$dir/pg.url"
}

# Stop the redis-server whose pid is in DIR/redis.pid (TERM, then KILL after 5 s).
redis_stop() {
	local rp
	rp=$(redis_pid "$1")
	if pid_alive "$rp" && grep -q redis "/proc/$rp/comm" 2>/dev/null; then
		kill -TERM "$rp" 2>/dev/null || true
		for _ in $(seq 50); do
			pid_alive "$rp" || break
			sleep 0.1
		done
		if pid_alive "$rp"; then kill -KILL "$rp" 2>/dev/null || true; fi
	fi
}

start_redis() {
	local dir=$1 port=$2
	command -v redis-server >/dev/null || die "redis-server not found (install redis-server)"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize yes --pidfile "$dir/redis.pid" --dir "$dir" \
		--logfile "$dir/redis.log" >/dev/null || die "redis-server did not start"
	for _ in $(seq 100); do
		if command -v redis-cli >/dev/null; then
			[[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && break
		elif [[ -s $dir/redis.pid ]]; then
			break
		fi
		sleep 0.1
	done
	pid_alive "$(redis_pid "$dir")" || {
		tail -n 20 "$dir/redis.log" >&2 || true
		die "redis-server did not start"
	}
	echo "redis://127.0.0.1:$port/0" >"$dir/redis.url"
}

# Stop the servers when the owner exits or the TTL passes.
start_watchdog() {
	local dir=$1 owner=$2 ttl=${PORTCULLIS_TEST_SERVERS_TTL:-7200}
	local deadline=$(($(date +%s) + ttl))
	# shellcheck disable=SC2016 # expanded by the inner bash
	setsid bash -c '
		export TEST_SERVERS_WATCHDOG=$$
		echo $$ >"$1/watchdog.pid"
		while [[ $(date +%s) -lt $2 ]]; do
			[[ -d $1 ]] || exit 0
			if [[ -n $3 ]] && ! kill -0 "$3" 2>/dev/null; then break; fi
			sleep 2
		done
		exec "$4" stop "$1"
	' watchdog "$dir" "$deadline" "$owner" "$SELF" </dev/null >>"$dir/watchdog.log" 2>&1 &
}

cmd_start() {
	local dir='' owner=${PORTCULLIS_TEST_SERVERS_OWNER:-}
	while [[ $# -gt 0 ]]; do
		case $1 in
		--owner)
			owner=${2:?--owner needs a pid}
			shift 2
			;;
		*)
			dir=$1
			shift
			;;
		esac
	done
	[[ -z $owner ]] || pid_alive "$owner" || die "owner process $owner is not running"
	# Already running (this DIR, or the one this shell started): say so again.
	local existing=${dir:-${PORTCULLIS_TEST_SERVERS_DIR:-}}
	if [[ -n $existing ]] && running "$existing"; then
		print_exports "$(readlink -f "$existing")"
		return 0
	fi
	if [[ -n $dir ]]; then
		if [[ -e $dir && -n $(ls -A "$dir" 2>/dev/null) ]]; then
			[[ -f $dir/$MARKER ]] || die "$dir exists and is not empty"
			cmd_stop "$dir" # left over from a crashed run
		fi
		mkdir -p "$dir"
	else
		dir=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-test.XXXXXX")
	fi
	dir=$(readlink -f "$dir")
	touch "$dir/$MARKER"
	chmod 755 "$dir"
	if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi

	local ports pg_port redis_port
	ports=$(free_ports 2)
	pg_port=${ports% *}
	redis_port=${ports#* }
	# On failure, leave nothing running.
	trap 'cmd_stop "$dir" >/dev/null 2>&1 || true' EXIT
	start_pg "$dir" "$pg_port"
	start_redis "$dir" "$redis_port"
	start_watchdog "$dir" "$owner"
	trap - EXIT
	log "PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port, data in $dir"
	print_exports "$dir"
}

# The DIR of a pg-/redis- command: made by start, servers started.
outage_dir() {
	local dir=${1:-${PORTCULLIS_TEST_SERVERS_DIR:-}}
	[[ -n $dir && -f $dir/$MARKER && -f $dir/pg.url && -f $dir/redis.url ]] ||
		die "usage: $0 pg-stop|pg-start|redis-stop|redis-start DIR (a DIR made by start)"
	readlink -f "$dir"
}

# The port in a URL file: the digits after the last ':' (before the path).
url_port() {
	local u
	u=$(cat "$1")
	u=${u##*:}
	echo "${u%%/*}"
}

case ${1:-start} in
start)
	shift || true
	cmd_start "$@"
	;;
stop)
	shift
	cmd_stop "$@"
	;;
pg-stop)
	shift
	d=$(outage_dir "$@")
	pg_ctl_stop "$d"
	;;
pg-start)
	shift
	d=$(outage_dir "$@")
	pg_running "$d" || pg_ctl_start "$d"
	;;
redis-stop)
	shift
	d=$(outage_dir "$@")
	redis_stop "$d"
	;;
redis-start)
	shift
	d=$(outage_dir "$@")
	pid_alive "$(redis_pid "$d")" || start_redis "$d" "$(url_port "$d/redis.url")"
	;;
status)
	shift
	d=${1:-${PORTCULLIS_TEST_SERVERS_DIR:-}}
	if [[ -n $d ]] && running "$d"; then
		print_exports "$(readlink -f "$d")"
	else
		log "not running"
		exit 1
	fi
	;;
*)
	die "usage: $0 [start [--owner PID] [DIR] | stop DIR | status [DIR] |" \
		"pg-stop|pg-start|redis-stop|redis-start DIR]"
	;;
esac
