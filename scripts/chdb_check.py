#!/usr/bin/env python3
"""Check that tally's SQL also runs on a current ClickHouse, via chDB (embedded, in-process).

Usage:
    python3 scripts/chdb_check.py SCHEMA_DIR [--queries FILE.sql ...]

Runs every SCHEMA_DIR/*.sql in sorted order inside one persistent chdb Session (a fresh
temporary directory), then each --queries file. Each file is split into statements on a `;`
that ends a line; `--` comment lines and empty statements are skipped; `{db}` is replaced
with the database `tally_chdb`, created first. Prints the ClickHouse version, one line per
file (`ok FILE (N statements)` or `FAIL FILE: statement...: error`), exits 1 on any failure.

chDB lives in a virtualenv, created on first use with `pip install chdb-core`:
    $TALLY_CACHE/chdb-venv  (TALLY_CACHE defaults to <repo>/.cache)
and the script re-executes itself inside it.
"""
import sys
import tempfile
from pathlib import Path

DB = "tally_chdb"


def ensure_venv():
    """Re-exec inside the chDB virtualenv (created on first use) unless already there."""
    from venv_bootstrap import reexec_in_venv

    reexec_in_venv("chdb-venv", "chdb-core", __file__)


def statements(path):
    """Split a .sql file into statements: `;` at line end ends one; `--` lines are dropped."""
    out, cur = [], []
    for line in path.read_text().splitlines():
        if line.strip().startswith("--"):
            continue
        cur.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur).strip().rstrip(";").strip())
            cur = []
    out.append("\n".join(cur).strip().rstrip(";").strip())
    return [s.replace("{db}", DB) for s in out if s]


def run_file(sess, path):
    stmts = statements(path)
    for stmt in stmts:
        try:
            res = sess.query(stmt, "CSV")
            err = getattr(res, "error_message", None) and res.error_message()
            if err:
                raise RuntimeError(err)
        except Exception as e:  # chdb raises RuntimeError / ChdbError
            head = " ".join(stmt.split())[:120]
            msg = " ".join(str(e).split())[:600]
            print(f"FAIL {path}: {head}...: {msg}")
            return False
    print(f"ok {path} ({len(stmts)} statements)")
    return True


def main(argv):
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    schema_dir, rest = Path(argv[0]), argv[1:]
    queries = []
    if rest:
        if rest[0] != "--queries" or len(rest) < 2:
            sys.exit(__doc__)
        queries = [Path(q) for q in rest[1:]]
    files = sorted(schema_dir.glob("*.sql"))
    if not files:
        sys.exit(f"no *.sql files in {schema_dir}")

    import chdb
    from chdb import session

    with tempfile.TemporaryDirectory(prefix="tally-chdb-") as tmp:
        sess = session.Session(tmp)
        version = str(sess.query("SELECT version()", "CSV")).strip().strip('"')
        print(f"chDB {getattr(chdb, '__version__', '?')}, ClickHouse {version}")
        sess.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        ok = all([run_file(sess, f) for f in files])  # run every file, even after a failure
        ok = all([run_file(sess, q) for q in queries]) and ok
        sess.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    ensure_venv()
    main(sys.argv[1:])
