#!/usr/bin/env bash
# Command line over environment over configuration file over built-in defaults.
. "$(dirname "$0")/../lib/testlib.sh"

mkdir "$T_DIR/file_dir" "$T_DIR/env_dir" "$T_DIR/cli_dir"
for d in file env cli; do
    printf 'SELECT 1;\n' >"$T_DIR/${d}_dir/V1__${d}.sql"
done
cat >"$T_DIR/pgstep.conf" <<CONF
steps: { directory = "$T_DIR/file_dir"; };
CONF
t_run 0 -c "$T_DIR/pgstep.conf" verify
t_stderr_has "file_dir"
PGSTEP_DIR="$T_DIR/env_dir" t_run 0 -c "$T_DIR/pgstep.conf" verify
t_stderr_has "env_dir"
PGSTEP_DIR="$T_DIR/env_dir" t_run 0 -c "$T_DIR/pgstep.conf" -d "$T_DIR/cli_dir" verify
t_stderr_has "cli_dir"
PGSTEP_CONFIG="$T_DIR/pgstep.conf" t_run 0 verify
t_stderr_has "file_dir"

# Connection: a bad conninfo in the file loses to PGSTEP_DSN, which loses to --dsn.
bad_port=$(pg_free_port)
db=$(t_db prec)
cat >"$T_DIR/conn.conf" <<CONF
connection: { conninfo = "$(t_dsn "$db" "$bad_port")"; password_file = "$PGSTEP_TEST_PASSFILE"; };
wait: { timeout = 1; };
CONF
t_run 69 -c "$T_DIR/conn.conf" wait
PGSTEP_DSN="$(t_dsn "$db")" t_run 0 -c "$T_DIR/conn.conf" wait
PGSTEP_DSN="$(t_dsn "$db")" t_run 69 -c "$T_DIR/conn.conf" --dsn "$(t_dsn "$db" "$bad_port")" wait

# connection.dbname wins over the dbname of a DSN (CNPG's superuser secret says dbname *).
cat >"$T_DIR/dbname.conf" <<CONF
connection: { dbname = "$db"; password_file = "$PGSTEP_TEST_PASSFILE"; };
CONF
mkdir "$T_DIR/steps" && printf 'CREATE TABLE IF NOT EXISTS marker (id int);\n' >"$T_DIR/steps/V1__m.sql"
t_run 0 -c "$T_DIR/dbname.conf" --dsn "$(t_dsn '*')" -d "$T_DIR/steps" apply
[ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 1 ] || t_fail "dbname did not win"

# The libpq environment works as it does for psql.
PGHOST=127.0.0.1 PGPORT=$PGSTEP_TEST_PORT PGUSER=postgres PGDATABASE=$db \
    PGPASSWORD=$(cat "$PGSTEP_TEST_PASSFILE") t_run 0 wait

# Variables: -v over the configuration file.
printf 'SELECT :%s;\n' "'who'" >"$T_DIR/file_dir/V2__who.sql"
cat >"$T_DIR/vars.conf" <<CONF
steps: { directory = "$T_DIR/file_dir"; };
variables: { who = "file"; };
CONF
t_run 0 -c "$T_DIR/vars.conf" verify
t_run 65 -c "$T_DIR/pgstep.conf" verify
t_stderr_has 'undefined variable "who"'
t_ok "command line > environment > file > defaults"
