#!/usr/bin/env bash
# The airflow-init service: runs once per `docker compose up`, before every other Airflow component
# (they wait for it with `condition: service_completed_successfully`). Idempotent.
#
#   1. refuse placeholder secrets (.env copied from .env.example and not edited) with one message;
#   2. airflow db migrate (Airflow's tables and, with the FAB auth manager, its user tables);
#   3. the admin user (FAB; an existing user is left as it is: change its password in the UI or
#      with `airflow users reset-password`);
#   4. the pools, variables and the weaviate_default connection declared in airflow_settings.yaml
#      (the file `scripts/airflow up` uses too; its ${VAR} values come from this environment);
#   5. the connections: weaviate_default from that file, openai_default / cohere_default from the
#      environment when their variables are set (NEWSRAG_INIT_CONNECTIONS: overwrite (default: .env
#      is the source of truth, so a rotated key reaches Airflow on the next `up`), missing (create
#      only those that do not exist yet; edits made in the UI stay) or off).
#
# Secrets are never printed: no `set -x`, and connections are imported from a private temporary
# file rather than passed on a command line.
set -euo pipefail

log() { printf '[airflow-init] %s\n' "$*"; }

log "checking secrets"
python - <<'PY'
import os
import sys

from newsrag.core.settings import PLACEHOLDER_SECRETS

# variable in this container -> its name in .env
REQUIRED = {"WEAVIATE_API_KEY": "WEAVIATE_API_KEY", "AIRFLOW_ADMIN_PASSWORD": "AIRFLOW_ADMIN_PASSWORD",
            "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY"}
OPTIONAL = {"OPENAI_API_KEY": "OPENAI_API_KEY", "COHERE_API_KEY": "COHERE_API_KEY"}  # blank is fine


def placeholder(value: str) -> bool:  # the rule of newsrag.core.settings.check_secret
    raw = value.strip().lower()
    return raw in PLACEHOLDER_SECRETS or raw.startswith("<") or "placeholder" in raw


bad = [dotenv for n, dotenv in REQUIRED.items() if placeholder(os.environ.get(n, ""))]
bad += [dotenv for n, dotenv in OPTIONAL.items() if n in os.environ and placeholder(os.environ[n])]
if bad:
    sys.exit("airflow-init: these variables still hold placeholder values; set real secrets in .env "
             "(see .env.example for how to generate each): " + ", ".join(bad))
try:
    from cryptography.fernet import Fernet

    Fernet(os.environ["AIRFLOW__CORE__FERNET_KEY"].encode())
except (ValueError, TypeError):
    sys.exit("airflow-init: AIRFLOW_FERNET_KEY is not a Fernet key; generate one with: python -c "
             "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")
PY

log "airflow db migrate"
airflow db migrate

log "admin user ${AIRFLOW_ADMIN_USERNAME}"
airflow users create --role Admin \
  --username "$AIRFLOW_ADMIN_USERNAME" \
  --password "$AIRFLOW_ADMIN_PASSWORD" \
  --email "${AIRFLOW_ADMIN_EMAIL:-admin@example.org}" \
  --firstname "${AIRFLOW_ADMIN_FIRSTNAME:-newsrag}" \
  --lastname "${AIRFLOW_ADMIN_LASTNAME:-admin}"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"
settings="$(cd "$(dirname "$0")/.." && pwd)/airflow_settings.yaml"
log "objects from ${settings}"
python -m newsrag.cli.airflow_settings "$settings" "$workdir"

while IFS=$'\t' read -r pool slots description; do
  log "pool ${pool}: ${slots} slots"
  airflow pools set "$pool" "$slots" "$description"
done < "$workdir/pools.tsv"

log "variables: importing (overwrite)"
airflow variables import --action-on-existing-key overwrite "$workdir/variables.json"

mode="${NEWSRAG_INIT_CONNECTIONS:-overwrite}"
case "$mode" in
  off)
    log "connections: skipped (NEWSRAG_INIT_CONNECTIONS=off)"
    exit 0
    ;;
  overwrite | missing) ;;
  *)
    log "NEWSRAG_INIT_CONNECTIONS must be overwrite, missing or off (got ${mode})"
    exit 2
    ;;
esac

conn_file="$workdir/connections.json"
# Adds the provider connections from the environment to those of airflow_settings.yaml; prints only their ids.
python - "$conn_file" <<'PY'
import json
import os
import sys

env = os.environ
with open(sys.argv[1]) as f:
    conns = json.load(f)  # weaviate_default, rendered from airflow_settings.yaml
for conn_id, prefix, name in (("openai_default", "OPENAI", "OpenAI"), ("cohere_default", "COHERE", "Cohere")):
    key, base = env.get(f"{prefix}_API_KEY"), env.get(f"{prefix}_BASE_URL")
    if key or base:
        conns[conn_id] = {"conn_type": "generic", "host": base, "password": key,
                          "description": f"newsrag: {name} (set by airflow-init from .env)"}
conns = {cid: {k: v for k, v in c.items() if v is not None} for cid, c in conns.items()}
with open(sys.argv[1], "w") as f:  # created 0600 by newsrag.cli.airflow_settings
    json.dump(conns, f)
print(" ".join(sorted(conns)))
PY

if [ "$(python -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$conn_file")" = "0" ]; then
  log "connections: none to create (none in airflow_settings.yaml, no OPENAI_*, COHERE_* set)"
elif [ "$mode" = "overwrite" ]; then
  log "connections: importing (overwrite)"
  airflow connections import --overwrite "$conn_file"
else
  log "connections: importing those that do not exist yet"
  airflow connections import "$conn_file"
fi
log "done"
