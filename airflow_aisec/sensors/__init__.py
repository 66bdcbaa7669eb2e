"""airflow-aisec sensors."""
