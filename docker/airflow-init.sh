#!/usr/bin/env bash
# The airflow-init service: runs once per `docker compose up`, before every other Airflow component
# (they wait for it with `condition: service_completed_successfully`). Idempotent.
#
#   1. refuse placeholder secrets (.env copied from .env.example and not edited) with one message;
#   2. airflow db migrate (Airflow's tables and, with the FAB auth manager, its user tables);
#   3. the admin user (FAB; an existing user is left as it is: change its password in the UI or
#      with `airflow users reset-password`);
#   4. the embedding pool: airflow pools set newsrag_embeddings 2 "embedding concurrency";
#   5. the connections weaviate_default / openai_default / cohere_default from the environment,
#      when their variables are set (NEWSRAG_INIT_CONNECTIONS: overwrite (default: .env is the
#      source of truth, so a rotated key reaches Airflow on the next `up`), missing (create only
#      those that do not exist yet; edits made in the UI stay) or off).
#
# Secrets are never printed: no `set -x`, and connections are imported from a private temporary
# file rather than passed on a command line.
set -euo pipefail

log() { printf '[airflow-init] %s\n' "$*"; }

log "checking secrets"
python - <<'PY'
import os
import sys

from newsrag.settings import PLACEHOLDER_SECRETS

# variable in this container -> its name in .env
REQUIRED = {"WEAVIATE_API_KEY": "WEAVIATE_API_KEY", "AIRFLOW_ADMIN_PASSWORD": "AIRFLOW_ADMIN_PASSWORD",
            "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
            "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY"}
OPTIONAL = {"OPENAI_API_KEY": "OPENAI_API_KEY", "COHERE_API_KEY": "COHERE_API_KEY"}  # blank is fine


def placeholder(value: str) -> bool:  # the rule of newsrag.settings.check_secret
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

pool="${NEWSRAG_EMBED_POOL:-newsrag_embeddings}"
slots="${NEWSRAG_EMBED_POOL_SLOTS:-2}"
log "pool ${pool}: ${slots} slots"
airflow pools set "$pool" "$slots" "embedding concurrency (newsrag)"

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

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
chmod 700 "$workdir"
conn_file="$workdir/connections.json"
# Builds the connections from the environment; prints only their ids.
python - "$conn_file" <<'PY'
import json
import os
import sys
from urllib.parse import urlsplit

env = os.environ
conns = {}
if env.get("WEAVIATE_URL"):
    url = urlsplit(env["WEAVIATE_URL"])
    extra = {"collection": env.get("WEAVIATE_COLLECTION", "NewsChunk")}
    if env.get("WEAVIATE_GRPC_URL"):
        grpc = urlsplit(env["WEAVIATE_GRPC_URL"])
        extra.update(grpc_host=grpc.hostname, grpc_port=grpc.port or 50051,
                     grpc_secure=grpc.scheme in ("https", "grpcs"))
    conns["weaviate_default"] = {"conn_type": url.scheme, "host": url.hostname, "port": url.port,
                                 "password": env.get("WEAVIATE_API_KEY"), "extra": extra,
                                 "description": "newsrag: Weaviate (set by airflow-init from .env)"}
for conn_id, prefix, name in (("openai_default", "OPENAI", "OpenAI"), ("cohere_default", "COHERE", "Cohere")):
    key, base = env.get(f"{prefix}_API_KEY"), env.get(f"{prefix}_BASE_URL")
    if key or base:
        conns[conn_id] = {"conn_type": "generic", "host": base, "password": key,
                          "description": f"newsrag: {name} (set by airflow-init from .env)"}
conns = {cid: {k: v for k, v in c.items() if v is not None} for cid, c in conns.items()}
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(conns, f)
print(" ".join(sorted(conns)))
PY

if [ "$(python -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$conn_file")" = "0" ]; then
  log "connections: none to create (no WEAVIATE_URL, OPENAI_*, COHERE_* set)"
elif [ "$mode" = "overwrite" ]; then
  log "connections: importing (overwrite)"
  airflow connections import --overwrite "$conn_file"
else
  log "connections: importing those that do not exist yet"
  airflow connections import "$conn_file"
fi
log "done"
