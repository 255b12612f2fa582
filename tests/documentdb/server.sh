#!/usr/bin/env bash
# Throwaway PostgreSQL 15 server configured for DocumentDB (pgstep tests).
#
# As a command:
#   server.sh start DIR PORT   initdb a fresh cluster in DIR and start it on PORT
#   server.sh stop DIR         stop it (pg_ctl -m fast -w)
#   server.sh destroy DIR      stop it and remove DIR
# As a library (source it): documentdb_server_start DIR PORT,
#   documentdb_server_stop DIR, documentdb_server_destroy DIR,
#   documentdb_server_password DIR, documentdb_server_port DIR.
#
# Layout of DIR (owned by the server's OS user, mode 0700):
#   data/                 PGDATA
#   run/                  Unix socket directory (0700)
#   superuser.password    password of the superuser "postgres" (0600)
#   pgpass                libpq passfile for that superuser over TCP (0600)
#   server.log            server log
#
# Clients: TCP on 127.0.0.1:PORT only, scram-sha-256 password authentication.
# The Unix socket exists only for the server's own loopback connections:
# DocumentDB opens libpq connections back to its server as the session user
# (documentdb.localhost_connection_string; first find, index builds) and so
# does pg_cron (cron.host). Pointing both at the socket directory with a
# "local ... trust" line works for every role without knowing its password;
# the 0700 socket directory restricts it to the server's OS user (and root).
# (The alternative, host=127.0.0.1 plus a passfile, needs a line for the
# password of each role that runs a find.)
#
# When run as root the cluster runs as "postgres" (runuser -u postgres --);
# otherwise as the current user. Needs tests/documentdb/build-deps.sh first.

DOCUMENTDB_SERVER_BINDIR=${DOCUMENTDB_SERVER_BINDIR:-/usr/lib/postgresql/15/bin}

_dds_err() { printf 'server.sh: ERROR: %s\n' "$*" >&2; }

# Runs a command as the cluster's OS user.
_dds_as_owner() {
	if ((EUID == 0)); then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

_dds_abs() { realpath -m -- "$1"; }

documentdb_server_start() {
	local dir port pw sock
	if (($# != 2)); then
		_dds_err "usage: documentdb_server_start DIR PORT"
		return 2
	fi
	dir=$(_dds_abs "$1") || return 1
	port=$2
	if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
		_dds_err "invalid port: $port"
		return 2
	fi
	# The path goes unquoted into libpq connection strings and postgresql.conf.
	if ! [[ $dir =~ ^[A-Za-z0-9_./-]+$ ]]; then
		_dds_err "DIR may only contain [A-Za-z0-9_./-]: $dir"
		return 2
	fi
	sock=$dir/run
	if ((${#sock} + ${#port} + 10 > 107)); then
		_dds_err "DIR too long for a Unix socket path (max ~90 chars): $dir"
		return 2
	fi
	if [[ -e $dir && ! -d $dir ]] || [[ -d $dir && -n $(ls -A -- "$dir") ]]; then
		_dds_err "DIR must be new or empty: $dir"
		return 1
	fi
	if [[ ! -x $DOCUMENTDB_SERVER_BINDIR/initdb ]]; then
		_dds_err "no initdb in $DOCUMENTDB_SERVER_BINDIR (apt-get install postgresql-15)"
		return 1
	fi

	mkdir -p -- "$dir" && chmod 700 -- "$dir" || return 1
	: >"$dir/.pgstep-documentdb-server" || return 1 # marker for destroy
	pw=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n') || return 1
	(
		umask 077
		printf '%s\n' "$pw" >"$dir/superuser.password" &&
			printf '127.0.0.1:%s:*:postgres:%s\n' "$port" "$pw" >"$dir/pgpass" &&
			printf '%s\n' "$port" >"$dir/port" &&
			mkdir -m 700 "$sock"
	) || return 1
	if ((EUID == 0)); then
		chown -R postgres:postgres -- "$dir" || return 1
		if ! runuser -u postgres -- test -w "$dir" -a -x "$dir"; then
			_dds_err "user postgres cannot reach $dir (a parent directory is not searchable?)"
			return 1
		fi
	fi

	(
		cd -- "$dir" &&
			_dds_as_owner "$DOCUMENTDB_SERVER_BINDIR/initdb" -D "$dir/data" -U postgres \
				--pwfile="$dir/superuser.password" --auth-local=trust \
				--auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync
	) >"$dir/initdb.log" 2>&1 || {
		_dds_err "initdb failed; see $dir/initdb.log:"
		tail -n 20 "$dir/initdb.log" >&2
		return 1
	}

	_dds_as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<EOF || return 1
# TYPE  DATABASE USER ADDRESS       METHOD
# Loopback connections of DocumentDB and pg_cron; the socket directory is
# 0700, so only the server's OS user can use this.
local   all      all                trust
host    all      all  127.0.0.1/32  scram-sha-256
EOF
	_dds_as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF || return 1

# --- pgstep DocumentDB test server ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
fsync = off
shared_preload_libraries = 'pg_cron,pg_documentdb_core,pg_documentdb'
cron.database_name = 'postgres'
cron.host = '$sock'
documentdb.localhost_connection_string = 'host=$sock'
EOF

	(
		cd -- "$dir" &&
			_dds_as_owner "$DOCUMENTDB_SERVER_BINDIR/pg_ctl" -D "$dir/data" \
				-l "$dir/server.log" -w -t 60 start
	) >"$dir/pg_ctl.log" 2>&1 || {
		_dds_err "server did not start; last lines of $dir/server.log:"
		tail -n 20 "$dir/server.log" >&2
		return 1
	}
}

documentdb_server_stop() {
	local dir
	if (($# != 1)); then
		_dds_err "usage: documentdb_server_stop DIR"
		return 2
	fi
	dir=$(_dds_abs "$1") || return 1
	[[ -f $dir/data/postmaster.pid ]] || return 0
	(
		cd -- "$dir" &&
			_dds_as_owner "$DOCUMENTDB_SERVER_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop
	) >/dev/null || {
		_dds_err "pg_ctl stop failed for $dir"
		return 1
	}
}

documentdb_server_destroy() {
	local dir
	if (($# != 1)); then
		_dds_err "usage: documentdb_server_destroy DIR"
		return 2
	fi
	dir=$(_dds_abs "$1") || return 1
	[[ -e $dir ]] || return 0
	if [[ ! -f $dir/.pgstep-documentdb-server ]]; then
		_dds_err "refusing to remove $dir: not made by server.sh"
		return 1
	fi
	documentdb_server_stop "$dir" || return 1
	rm -rf -- "$dir"
}

documentdb_server_password() { cat -- "$1/superuser.password"; }
documentdb_server_port() { cat -- "$1/port"; }

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	case ${1:-} in
	start)
		(($# == 3)) || {
			echo "usage: $0 start DIR PORT" >&2
			exit 2
		}
		documentdb_server_start "$2" "$3"
		echo "server.sh: started on 127.0.0.1:$3 (user postgres, PGPASSFILE=$(_dds_abs "$2")/pgpass)"
		;;
	stop)
		(($# == 2)) || {
			echo "usage: $0 stop DIR" >&2
			exit 2
		}
		documentdb_server_stop "$2"
		;;
	destroy)
		(($# == 2)) || {
			echo "usage: $0 destroy DIR" >&2
			exit 2
		}
		documentdb_server_destroy "$2"
		;;
	*)
		echo "usage: $0 start DIR PORT | stop DIR | destroy DIR" >&2
		exit 2
		;;
	esac
fi
