"""Small helpers shared by core, operators and CLI (no Airflow import)."""
