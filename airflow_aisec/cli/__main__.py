"""``python -m airflow_aisec.cli``: the ``aisec`` command."""

import sys

from airflow_aisec.cli import main

sys.exit(main())
