"""newsrag: one namespace. Layers, bottom up: core <- infra, providers, store <- ingest, retrieval <- evaluation, prompts <- edges (cli, app, airflow)."""

__version__ = "0.1.0"
