"""Pure engines of airflow-aisec. Nothing in this package imports Airflow.

Each module takes plain inputs (paths, bytes, dicts) and returns :class:`airflow_aisec.report.Report`
objects or plain data; the operators, the CLI and the tests all call the same functions.
"""
