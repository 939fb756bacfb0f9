#!/usr/bin/env bash
# Does this checkout's schema equal the one of an earlier commit? (issue 19:
# the migration chain was squashed into one baseline plus sql/functions/.)
#
# Creates two databases on SERVER, migrates one with OLD_COMMIT's collector/db.py
# and sql/ (taken with `git archive`) and the other with this checkout's, dumps
# both with `pg_dump --schema-only --no-owner` and prints the diff; exits 1 when
# they differ. pg_dump must match the server's major version.
#
#   scripts/compare_schema.sh [SERVER_URL]      (default postgresql://postgres@127.0.0.1:5432)
#   OLD_COMMIT=d59e9d7 (the last commit of the chain), PYTHON=.venv/bin/python
set -euo pipefail

server=${1:-postgresql://postgres@127.0.0.1:5432}
old_commit=${OLD_COMMIT:-d59e9d7}
root=$(git rev-parse --show-toplevel)
python=${PYTHON:-$root/.venv/bin/python}
tmp=$(mktemp -d)
suffix=$$
cleanup() {
    for side in old new; do
        psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS compare_${side}_$suffix" || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

mkdir "$tmp/old"
git -C "$root" archive "$old_commit" collector sql | tar -x -C "$tmp/old"

# Migrates database $2 with the collector/ and sql/ found in directory $1.
migrate() {
    psql -q "$server/postgres" -c "CREATE DATABASE $2"
    (cd "$1" && PYTHONPATH="$1" "$python" - "$server/$2" <<'PY'
import asyncio, sys
from pathlib import Path
import collector
from collector import db
assert Path(collector.__file__).resolve().is_relative_to(Path.cwd().resolve()), collector.__file__

async def main(url: str) -> None:
    conn = await db.connect(url)
    try:
        await db.migrate(conn, Path.cwd() / "sql")
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1]))
PY
    )
    # \restrict lines carry a random key; the database's own settings (ALTER
    # DATABASE ... SET) are dumped only with --create, so they are listed apart.
    pg_dump --schema-only --no-owner "$server/$2" | grep -v '^\\\(un\)\?restrict ' > "$tmp/$2.sql"
    psql -qAt "$server/$2" -c "SELECT 'database setting: ' || unnest(setconfig)
        FROM pg_db_role_setting WHERE setrole = 0
        AND setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())" \
        >> "$tmp/$2.sql"
}

migrate "$tmp/old" "compare_old_$suffix"
migrate "$root" "compare_new_$suffix"
if diff -u --label "$old_commit" --label "this checkout" \
        "$tmp/compare_old_$suffix.sql" "$tmp/compare_new_$suffix.sql"; then
    echo "schemas identical" >&2
else
    exit 1
fi
