#!/usr/bin/env bash
# Entry point of the newsrag image, for every service (Airflow components and the app).
#
# Compose passes optional settings that .env leaves blank (`OPENAI_API_KEY=`) as empty strings.
# newsrag's settings would read an empty string as a value, and an empty secret is refused in
# production, so empty WEAVIATE_*, OPENAI_*, COHERE_* and NEWSRAG_* variables are dropped here:
# blank means "not set", and the library's defaults apply. Then the command runs as PID 1's child
# (tini is PID 1 and forwards signals, so Celery workers shut down warmly).
set -euo pipefail

for name in $(compgen -e); do
  case "$name" in
    WEAVIATE_* | OPENAI_* | COHERE_* | NEWSRAG_*)
      if [ -z "${!name}" ]; then
        unset "$name"
      fi
      ;;
  esac
done

if [ "$#" -eq 0 ]; then
  set -- uvicorn newsrag.app.main:create_app --factory --host 0.0.0.0 --port 8000
fi
exec "$@"
