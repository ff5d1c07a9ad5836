#!/usr/bin/env bash
# Runs once, when the postgres volume is initialised (docker-entrypoint-initdb.d): one role and one
# database for Airflow's metadata, one for newsrag (evaluation history; the prompt registry once
# it has a PostgreSQL backend). Passwords come from the environment (.env), never from this file,
# and are passed to psql as variables (quoted by psql, never interpolated by the shell).
# To add the databases to an existing volume, run the same statements by hand with psql.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
: "${NEWSRAG_DB_PASSWORD:?set NEWSRAG_DB_PASSWORD in .env}"

psql -X -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v airflow_password="$AIRFLOW_DB_PASSWORD" -v newsrag_password="$NEWSRAG_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE newsrag LOGIN PASSWORD :'newsrag_password';
CREATE DATABASE newsrag OWNER newsrag;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE newsrag FROM PUBLIC;
SQL
echo "postgres-init: created databases airflow and newsrag"
