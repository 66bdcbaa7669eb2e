"""airflow-aisec: AI/ML security checks for Apache Airflow 3."""

__version__ = "0.1.0"
