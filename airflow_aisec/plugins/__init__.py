"""Airflow UI plugin of airflow-aisec: the ``/aisec`` app (views + Prometheus metrics) and its external views."""
