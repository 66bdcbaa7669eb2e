"""airflow-aisec hooks: Airflow connections → clients and keys."""
