"""airflow-aisec triggers (run in the triggerer for deferrable sensors)."""
