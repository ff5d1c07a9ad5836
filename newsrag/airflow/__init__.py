"""The Airflow integration (an edge): hooks that turn Connections into settings objects, notifiers, consumers.

Installed with the package, so DAG files import it like any library; it is the only place besides dags/
that imports airflow."""
