#!/usr/bin/env bash
# Install (Debian package), start and prepare a local PostgreSQL server for the test suite.
# Prints the SQLAlchemy URL of a fresh test database on its last line.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get install -y -qq postgresql >/dev/null
fi
if command -v pg_ctlcluster >/dev/null 2>&1; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_lsclusters -h | grep -q "^$version main" || pg_createcluster "$version" main >/dev/null
  pg_ctlcluster "$version" main start 2>/dev/null || true
fi
for _ in $(seq 30); do su postgres -c "pg_isready -q" && break; sleep 1; done
su postgres -c "psql -qtc \"SELECT 1 FROM pg_roles WHERE rolname='metalearn'\" | grep -q 1 \
  || psql -qc \"CREATE ROLE metalearn LOGIN SUPERUSER PASSWORD 'metalearn'\"" >/dev/null
su postgres -c "psql -qtc \"SELECT 1 FROM pg_database WHERE datname='metalearn_test'\" | grep -q 1 \
  || createdb -O metalearn metalearn_test" >/dev/null
echo "postgresql+psycopg://metalearn:metalearn@127.0.0.1:5432/metalearn_test"
