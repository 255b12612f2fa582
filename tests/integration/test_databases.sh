#!/usr/bin/env bash
# One run applies a step set that spans several databases (steps.databases, one subdirectory
# each), in the declared order, each completely before the next, each with its own history.
. "$(dirname "$0")/../lib/testlib.sh"

a=$(t_db a) b=$(t_db b) c=$(t_db c)
steps=$T_DIR/steps
mkdir -p "$steps/$a" "$steps/$b" "$steps/$c"
for db in "$a" "$b" "$c"; do
    printf 'CREATE TABLE counter (step text);\n' >"$steps/$db/V1__counter.sql"
    # Not idempotent on purpose: a second application would show as a second row.
    printf "INSERT INTO counter VALUES ('V2');\n" >"$steps/$db/V2__count.sql"
    printf "INSERT INTO counter VALUES ('R');\n" >"$steps/$db/R__count.sql"
done
databases="steps: { databases = [\"$a\", \"$b\", \"$c\"]; }; lock: { timeout = 120; };"
t_conf "$T_DIR/pgstep.conf" postgres "$databases"
counts() { for db in "$a" "$b" "$c"; do t_psql "$db" "SELECT count(*) FROM counter"; done | paste -sd,; }

t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" verify
t_stderr_has "is valid: 3 steps"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply --dry-run
t_stdout_has "database \"$b\":"
[ "$(t_psql "$a" "SELECT to_regclass('pgstep.history')")" = "" ] || t_fail "the dry run created the history"

# Fresh apply: every database, in order; the summary names each.
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied 9 steps \($a 3, $b 3, $c 3\), skipped 0"
[ "$(counts)" = 2,2,2 ] || t_fail "rows after the first apply: $(counts)"
order=$(grep -o "applying 3 steps to database \"[a-z_]*\"" "$T_DIR/stderr" | sed 's/.*"\(.*\)"/\1/' | paste -sd,)
[ "$order" = "$a,$b,$c" ] || t_fail "databases applied in the order $order"
for db in "$a" "$b" "$c"; do
    [ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 3 ] || t_fail "history of $db"
done

# Second run: nothing anywhere.
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "nothing to apply: 9 steps already applied in every database"
[ "$(counts)" = 2,2,2 ] || t_fail "rows after the second apply: $(counts)"

# A step added to the second database alone.
printf "INSERT INTO counter VALUES ('V3');\n" >"$steps/$b/V3__more.sql"
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "applied 1 step \($a 0, $b 1, $c 0\), skipped 9"
[ "$(counts)" = 2,3,2 ] || t_fail "rows after adding a step: $(counts)"

# Status, text and JSON.
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status --json
python3 - "$T_DIR/stdout" "$a" "$b" "$c" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
names = [d["name"] for d in doc["databases"]]
assert names == sys.argv[2:], names
assert [len(d["steps"]) for d in doc["databases"]] == [3, 4, 3], doc
assert doc["databases"][1]["summary"]["applied"] == 4, doc
assert doc["summary"] == {"applied": 10, "pending": 0, "rerun": 0, "changed": 0, "missing": 0}, doc
PY
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" status
t_stdout_has "database \"$c\":"

# A failing step in the second database: the first stays applied, the third is not touched.
printf "INSERT INTO counter VALUES ('V4');\n" >"$steps/$a/V4__more.sql"
printf "INSERT INTO counter VALUES ('V4');\nSELECT 1/0;\n" >"$steps/$b/V4__broken.sql"
printf "INSERT INTO counter VALUES ('V4');\n" >"$steps/$c/V4__more.sql"
t_conf "$T_DIR/fail.conf" postgres "$databases log: { termination_log = \"$T_DIR/termination\"; };"
t_run 1 -c "$T_DIR/fail.conf" -d "$steps" apply
t_stderr_has "$b/V4__broken.sql:2: division by zero"
[ "$(counts)" = 3,3,2 ] || t_fail "rows after a failure in the second database: $(counts)"
grep -q "databases done: $a 1; stopped in $b" "$T_DIR/termination" ||
    t_fail "termination message: $(cat "$T_DIR/termination")"
rm "$steps/$b/V4__broken.sql" "$steps/$c/V4__more.sql"

# Drift in one database is refused before anything runs in any.
printf "INSERT INTO counter VALUES ('V5');\n" >"$steps/$a/V5__more.sql"
printf "INSERT INTO counter VALUES ('changed');\n" >"$steps/$c/V2__count.sql"
t_run 65 -c "$T_DIR/pgstep.conf" -d "$steps" apply
t_stderr_has "$c/V2__count.sql was changed after it was applied"
[ "$(counts)" = 3,3,2 ] || t_fail "rows after refused drift: $(counts)"
printf "INSERT INTO counter VALUES ('V2');\n" >"$steps/$c/V2__count.sql"
rm "$steps/$a/V5__more.sql"

# Step files beside the subdirectories would be left out: refused.
printf 'SELECT 1;\n' >"$steps/V1__stray.sql"
t_run 65 -c "$T_DIR/pgstep.conf" -d "$steps" verify
t_stderr_has 'holds step file "V1__stray.sql"'
rm "$steps/V1__stray.sql"

# An empty list, a name used twice or one that is no directory name: configuration errors.
for bad in '[]' "[\"$a\", \"$a\"]" '["../x"]'; do
    printf 'steps: { databases = %s; };\n' "$bad" >"$T_DIR/bad.conf"
    t_run 78 -c "$T_DIR/bad.conf" -d "$steps" verify
    t_stderr_has 'key "steps.databases"'
done

# template0 does not allow connections: a configuration error naming it, without waiting.
t_conf "$T_DIR/template0.conf" postgres "steps: { databases = [\"$a\", \"template0\"]; };"
mkdir "$steps/template0"
printf 'SELECT 1;\n' >"$steps/template0/V1__x.sql"
t_run 78 -c "$T_DIR/template0.conf" -d "$steps" apply
t_stderr_has 'database "template0" does not allow connections'

# 8 runners at once across three fresh databases: every step exactly once.
x=$(t_db x) y=$(t_db y) z=$(t_db z)
many=$T_DIR/many
for db in "$x" "$y" "$z"; do
    mkdir -p "$many/$db"
    printf 'CREATE TABLE counter (step int);\n' >"$many/$db/V1__counter.sql"
    for v in $(seq 2 15); do
        printf 'INSERT INTO counter VALUES (%d);\n' "$v" >"$many/$db/V${v}__count_$v.sql"
    done
done
t_conf "$T_DIR/many.conf" postgres "steps: { databases = [\"$x\", \"$y\", \"$z\"]; }; lock: { timeout = 120; };"
t_run_together 8 -c "$T_DIR/many.conf" -d "$many" apply
for db in "$x" "$y" "$z"; do
    [ "$(t_psql "$db" "SELECT count(*), count(DISTINCT step) FROM counter")" = "14|14" ] ||
        t_fail "steps of $db not applied exactly once"
    [ "$(t_psql "$db" "SELECT count(*) FROM pgstep.history")" = 15 ] || t_fail "history of $db"
done

# The application database is created only after pgstep started waiting for it.
first=$(t_db first)
late="${T_NAME}_late"
t_on_exit "pg_psql $PGSTEP_TEST_PORT postgres -c 'DROP DATABASE IF EXISTS \"$late\" WITH (FORCE)' >/dev/null"
mkdir -p "$T_DIR/late/$first" "$T_DIR/late/$late"
printf 'CREATE TABLE IF NOT EXISTS late_first (id int);\n' >"$T_DIR/late/$first/V1__first.sql"
printf 'CREATE TABLE late_app (id int);\n' >"$T_DIR/late/$late/V1__app.sql"
t_conf "$T_DIR/late.conf" postgres "steps: { databases = [\"$first\", \"$late\"]; }; wait: { timeout = 60; };"
"$PGSTEP_BIN" -c "$T_DIR/late.conf" -d "$T_DIR/late" apply >"$T_DIR/stdout" 2>"$T_DIR/stderr" &
runner=$!
t_on_exit "kill $runner 2>/dev/null"
sleep 6
kill -0 "$runner" 2>/dev/null || t_fail "pgstep did not wait for the missing database"
grep -q "waiting for database \"$late\" to be created" "$T_DIR/stderr" || t_fail "no line says what pgstep waits for"
t_psql postgres "CREATE DATABASE \"$late\"" >/dev/null
rc=0
wait "$runner" || rc=$?
[ "$rc" = 0 ] || t_fail "apply exited $rc once the database existed"
[ "$(t_psql "$late" "SELECT count(*) FROM pgstep.history")" = 1 ] || t_fail "the late database's step"

# A database that never comes: exit 69 naming it.
t_conf "$T_DIR/never.conf" postgres "steps: { databases = [\"$first\", \"${T_NAME}_never\"]; }; wait: { timeout = 1; };"
mkdir -p "$T_DIR/late/${T_NAME}_never"
printf 'SELECT 1;\n' >"$T_DIR/late/${T_NAME}_never/V1__x.sql"
rm -r "${T_DIR:?}/late/$late"
t_run 69 -c "$T_DIR/never.conf" -d "$T_DIR/late" apply
t_stderr_has "database \"${T_NAME}_never\" does not exist"
t_ok "three databases in order, each with its own history; failure, drift, missing and late databases; 8 runners"
