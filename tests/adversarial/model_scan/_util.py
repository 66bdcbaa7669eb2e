"""Shared helpers: hostile payloads (never executed) and loader oracles that import nothing."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from airflow_aisec.cli import main


def sbu(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def payload_p0(sentinel: Path) -> bytes:
    """Protocol-0 ``os.system('touch SENTINEL')``: would create the sentinel if anything ran it."""
    return b"cos\nsystem\n(S'touch " + str(sentinel).encode() + b"'\ntR."


def payload_p4(sentinel: Path) -> bytes:
    """Protocol-4 ``posix.system(...)`` built with STACK_GLOBAL."""
    return b"\x80\x04" + sbu("posix") + sbu("system") + b"\x93" + sbu(f"touch {sentinel}") + b"\x85R."


class Reached(Exception):
    pass


class _CRecorder(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # never imports: the oracle only records
        raise Reached(f"{module}.{name}")

    def persistent_load(self, pid):
        raise Reached("persistent_load")


class _PyRecorder(pickle._Unpickler):  # type: ignore[name-defined,misc]
    def find_class(self, module: str, name: str):
        raise Reached(f"{module}.{name}")

    def persistent_load(self, pid):
        raise Reached("persistent_load")


def loader_reaches_import(data: bytes, *, max_pickles: int = 8) -> bool:
    """Would the C or the pure-Python unpickler, reading pickles in sequence, call ``find_class``?

    Uses unpicklers whose ``find_class`` raises before anything is imported: nothing can execute."""
    for cls in (_CRecorder, _PyRecorder):
        fh = io.BytesIO(data)
        for _ in range(max_pickles):
            if fh.tell() >= len(data):
                break
            try:
                cls(fh).load()
            except Reached:
                return True
            except Exception:
                break
    return False


def cli_exit(*args: str) -> int:
    return main(["scan-model", *args, "--format", "json"])
