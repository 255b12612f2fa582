#!/usr/bin/env bash
# Variables are substituted like psql's :'name' and :"name", quoted so that hostile values
# (quotes, backslashes, semicolons, newlines, dollar quotes, comment openers) arrive verbatim
# and can never break out; nothing is substituted in literals, comments or dollar quotes.
. "$(dirname "$0")/../lib/testlib.sh"

db=$(t_db vars)
t_conf "$T_DIR/pgstep.conf" "$db"
steps=$T_DIR/steps
mkdir "$steps"
cat >"$steps/V1__values.sql" <<'SQL'
CREATE TABLE got (k text, v text);
INSERT INTO got VALUES ('literal', :'hostile');
CREATE TABLE :"ident" (id int);
INSERT INTO got VALUES ('ident', (SELECT relname FROM pg_class WHERE oid = to_regclass(quote_ident(:'ident'))));
INSERT INTO got VALUES ('untouched', ':''hostile'' and :"ident" stay' || $$ :'hostile' $$); -- :'hostile'
/* :'hostile' */ INSERT INTO got VALUES ('cast', 1::text);
SQL
hostile=$(printf "it's; DROP TABLE got; --\n\\\\ \$\$ /* \"q\" \t end")
ident=$(printf 'odd "name"; DROP TABLE got')
t_run 0 -c "$T_DIR/pgstep.conf" -d "$steps" -v "hostile=$hostile" -v "ident=$ident" apply
python3 - "$hostile" "$ident" <<PY
import subprocess, sys
hostile, ident = sys.argv[1], sys.argv[2]
def q(sql):
    return subprocess.run(["env", "PGPASSWORD=$PG_SUPERUSER_PASSWORD", "$PG_BINDIR/psql", "-X", "-A", "-t",
        "-h", "127.0.0.1", "-p", "$PGSTEP_TEST_PORT", "-U", "postgres", "-d", "$db", "-c", sql],
        check=True, capture_output=True, text=True).stdout[:-1]
assert q("SELECT v FROM got WHERE k = 'literal'") == hostile, repr(q("SELECT v FROM got WHERE k = 'literal'"))
assert q("SELECT v FROM got WHERE k = 'ident'") == ident
assert q("SELECT v FROM got WHERE k = 'untouched'") == ":'hostile' and :\"ident\" stay :'hostile' "
assert q("SELECT v FROM got WHERE k = 'cast'") == "1"
assert q("SELECT count(*) FROM got") == "4"
PY
t_ok "hostile values arrive verbatim; literals, comments, dollar quotes and casts untouched"
