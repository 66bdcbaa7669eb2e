"""Lazy imports that are safe from worker threads.

The drift engine tests columns on a thread pool and imports scipy and pyarrow modules only when a
column needs them (so a whole ``aisec drift`` process stays cheap). Two threads importing parts of
``scipy.stats`` at once can deadlock on its circular imports (Python raises ``_DeadlockError``):
:func:`lazy_import` imports one module at a time, process-wide. Once imported, a module costs a dict
lookup.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

_LOCK = threading.RLock()


def lazy_import(name: str) -> ModuleType:
    """``importlib.import_module(name)``, serialised across threads."""
    module = sys.modules.get(name)
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False) is False:
        return module
    with _LOCK:
        return importlib.import_module(name)
