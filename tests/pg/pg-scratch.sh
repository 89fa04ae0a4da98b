#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: its own cluster in a
# temporary directory, listening only on a Unix socket in that directory
# (no TCP port), trust authentication (only the socket's owner and root can
# reach it) but for the role alert_exec_pw, whose password is "right", run
# as the unprivileged `postgres` user when started by root.
# Nothing here touches a server the machine may run.
#
#   pg-scratch.sh bindir             prints PostgreSQL's bin directory
#   pg-scratch.sh start [URI_FILE]   starts a server in a new temporary
#                                    directory; prints its URI (and writes it
#                                    to URI_FILE): postgresql:///postgres?host=DIR
#   pg-scratch.sh stop DIR|URI_FILE  stops it (pg_ctl stop -m fast) and
#                                    removes the directory
#   pg-scratch.sh restart DIR|URI_FILE  restarts it (pg_ctl restart -m fast:
#                                    every connection is cut) on the same
#                                    socket, with the same data
#   pg-scratch.sh schema URI SQL...  runs the SQL files in a new database and
#                                    prints its schema as pg_dump shows it
set -euo pipefail

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
		echo "pg-scratch: no PostgreSQL server binaries (install the postgresql package)" >&2
		return 1
	fi
	echo "$d"
}

# Runs a command as the server's user: postgres when we are root (the
# server refuses to run as root), ourselves otherwise.
as_server() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

start() {
	local bin dir user
	bin=$(bindir)
	# A server an interrupted run left behind is stopped first.
	if [ -n "${1:-}" ] && [ -f "$1" ]; then
		stop "$1" || true
	fi
	dir=$(mktemp -d "${TMPDIR:-/tmp}/alert-exec-pg.XXXXXX")
	user=$(id -un)
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	# The client's own user is the cluster's superuser: with trust on a
	# private socket, tests connect without a password.
	if ! as_server "$bin/initdb" -D "$dir/data" -U "$user" -A trust -E UTF8 --no-sync \
		>"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		rm -rf "$dir"
		return 1
	fi
	# One role logs in with a password (scram), so a test can give a
	# wrong one; every other user is trusted on the private socket.
	{
		echo "local all alert_exec_pw scram-sha-256"
		cat "$dir/data/pg_hba.conf"
	} >"$dir/pg_hba.conf.new"
	as_server cp "$dir/pg_hba.conf.new" "$dir/data/pg_hba.conf"
	rm -f "$dir/pg_hba.conf.new"
	if ! as_server "$bin/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
		-o "-c listen_addresses='' -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
		>/dev/null; then
		cat "$dir/server.log" >&2
		rm -rf "$dir"
		return 1
	fi
	"$bin/psql" -X -q -v ON_ERROR_STOP=1 "postgresql:///postgres?host=$dir" \
		-c "CREATE ROLE alert_exec_pw LOGIN PASSWORD 'right'" >/dev/null
	echo "postgresql:///postgres?host=$dir"
	if [ -n "${1:-}" ]; then
		echo "postgresql:///postgres?host=$dir" >"$1"
	fi
}

stop() {
	local bin dir=$1
	if [ -f "$dir" ]; then
		dir=$(sed -n 's/.*[?&]host=\([^&]*\).*/\1/p' "$1")
		rm -f "$1"
	fi
	case $dir in
	*/alert-exec-pg.*) ;;
	*) echo "pg-scratch: $dir is not a scratch server's directory" >&2; return 1 ;;
	esac
	bin=$(bindir)
	if [ -d "$dir/data" ]; then
		as_server "$bin/pg_ctl" stop -w -m fast -D "$dir/data" >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
}

# The directory of a scratch server named by DIR or a URI_FILE.
server_dir() {
	local dir=$1
	if [ -f "$dir" ]; then
		dir=$(sed -n 's/.*[?&]host=\([^&]*\).*/\1/p' "$1")
	fi
	case $dir in
	*/alert-exec-pg.*) echo "$dir" ;;
	*) echo "pg-scratch: $dir is not a scratch server's directory" >&2; return 1 ;;
	esac
}

restart() {
	local bin dir
	dir=$(server_dir "$1")
	bin=$(bindir)
	as_server "$bin/pg_ctl" restart -w -t 60 -m fast -D "$dir/data" -l "$dir/server.log" >/dev/null
}

schema() {
	local uri=$1 bin db host
	shift
	bin=$(bindir)
	db="schema_$$"
	host=$(echo "$uri" | sed -n 's/.*[?&]host=\([^&]*\).*/\1/p')
	"$bin/psql" -q -X -v ON_ERROR_STOP=1 "$uri" -c "CREATE DATABASE $db" >/dev/null
	cat "$@" | "$bin/psql" -q -X -v ON_ERROR_STOP=1 -1 "postgresql:///$db?host=$host" >/dev/null
	# Without the lines that are about the dump itself rather than the
	# schema (settings of the session, \restrict keys, comments).
	"$bin/pg_dump" --schema-only --no-owner --no-privileges --no-comments \
		"postgresql:///$db?host=$host" |
		grep -v -e '^\\restrict' -e '^\\unrestrict' -e '^SET ' -e '^SELECT pg_catalog.set_config' \
			-e '^--' |
		cat -s
	"$bin/psql" -q -X "$uri" -c "DROP DATABASE $db" >/dev/null
}

case ${1:-} in
bindir) bindir ;;
start) start "${2:-}" ;;
stop) stop "$2" ;;
restart) restart "$2" ;;
schema) shift; schema "$@" ;;
*)
	echo "usage: pg-scratch.sh bindir | start [URI_FILE] | stop DIR|URI_FILE | restart DIR|URI_FILE | schema URI SQL..." >&2
	exit 64
	;;
esac
