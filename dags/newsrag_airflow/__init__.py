"""Airflow-side helpers shared by the DAG files (notifiers). Not a DAG file: see .airflowignore."""
