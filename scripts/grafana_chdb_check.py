#!/usr/bin/env python3
"""Run the Grafana dashboards' panel queries (and the SQL metric formulas' check) on a current
ClickHouse, via chDB (embedded).

Usage:
    python3 scripts/grafana_chdb_check.py SCHEMA_DIR INPUT.json

INPUT.json holds {"tables": {"events": "<JSONEachRow rows>", ...}, "queries": [{"name": ...,
"sql": ...}, ...]}: the rows of tally's tables (dumped from the ClickHouse 18.16 test server) and
panel queries whose Grafana variables and macros are already substituted, or any other query
(tests/it/grafana.rs writes both: the panels, and the metric formulas over component values). The schema files are applied as scripts/chdb_check.py does, into database
`tally_chdb`, which then becomes the session's default database, as the Grafana data source's
default database is for the dashboards' unqualified table names. Each query runs with
`FORMAT JSONCompact`.

Prints one JSON document: {"clickhouse": VERSION, "results": [{"name", "columns", "types",
"rows"} or {"name", "error"}, ...]}; exits 1 when a query or a statement failed.
chDB comes from the same virtualenv as scripts/chdb_check.py.
"""
import json
import sys
import tempfile
from pathlib import Path


def ensure_venv():
    from venv_bootstrap import reexec_in_venv

    reexec_in_venv("chdb-venv", "chdb-core", __file__)


def check(res):
    err = getattr(res, "error_message", None) and res.error_message()
    if err:
        raise RuntimeError(err)
    return res


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    from chdb import session

    from chdb_check import DB, statements

    schema_dir, spec = Path(argv[0]), json.loads(Path(argv[1]).read_text())
    ok = True
    out = {"results": []}
    with tempfile.TemporaryDirectory(prefix="tally-grafana-chdb-") as tmp:
        sess = session.Session(tmp)
        out["clickhouse"] = str(check(sess.query("SELECT version()", "CSV"))).strip().strip('"')
        check(sess.query(f"CREATE DATABASE IF NOT EXISTS {DB}"))
        for path in sorted(schema_dir.glob("*.sql")):
            for stmt in statements(path):
                check(sess.query(stmt))
        check(sess.query(f"USE {DB}"))
        for table, rows in spec["tables"].items():
            if rows.strip():
                check(sess.query(f"INSERT INTO {DB}.{table} FORMAT JSONEachRow\n{rows}"))
        for q in spec["queries"]:
            try:
                res = check(sess.query(q["sql"], "JSONCompact"))
                doc = json.loads(res.bytes() if hasattr(res, "bytes") else str(res))
                out["results"].append({
                    "name": q["name"],
                    "columns": [m["name"] for m in doc["meta"]],
                    "types": [m["type"] for m in doc["meta"]],
                    "rows": doc["data"],
                })
            except Exception as e:  # chdb raises RuntimeError / ChdbError
                ok = False
                out["results"].append({"name": q["name"], "error": " ".join(str(e).split())[:2000]})
        sess.close()
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    ensure_venv()
    main(sys.argv[1:])
