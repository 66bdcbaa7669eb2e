"""airflow-aisec operators: thin orchestration over :mod:`airflow_aisec.core`.

Modules are imported explicitly (``from airflow_aisec.operators.integrity import …``); this package
imports nothing at parse time.
"""
