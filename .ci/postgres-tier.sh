#!/usr/bin/env bash
# The PostgreSQL tier (issue 14): several `serve` instances on one PostgreSQL.
# Installs PostgreSQL from the OS packages when missing; the tests start a throwaway cluster in a
# temporary folder as an unprivileged user (tests/support/pg_cluster.py) and remove it afterwards.
# Run from .ci/run after the default suite, inside its virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi

pip install --quiet -e '.[test,postgres]'
# Fail (instead of skipping) when PostgreSQL or psycopg cannot be used: CI always has them.
MOCK_CUSTODIAN_REQUIRE_POSTGRES=1 pytest -m postgres -p no:cacheprovider -n 0
