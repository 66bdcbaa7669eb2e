"""Renderings of an ``aisec.report/v1`` report for other tools (SARIF)."""
