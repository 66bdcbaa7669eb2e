"""Model formats, recognised by content (never by extension), each behind :class:`FormatScanner`.

:data:`SCANNERS` is the registry, in the order formats are tried: a stream goes to the first scanner
that matches it and accepts it; a stream no scanner accepts is ``unknown``. The parsers of Keras/HDF5,
ONNX and GGUF import their library (the ``formats`` extra) only when such a stream is met.
"""

from airflow_aisec.core.modelscan.formats.archive import ZipScanner
from airflow_aisec.core.modelscan.formats.base import FormatScanner, Sniffed
from airflow_aisec.core.modelscan.formats.compression import COMPRESSED_LABELS, CompressedScanner
from airflow_aisec.core.modelscan.formats.gguf import GgufScanner
from airflow_aisec.core.modelscan.formats.keras import Hdf5Scanner
from airflow_aisec.core.modelscan.formats.npy import NpyScanner
from airflow_aisec.core.modelscan.formats.onnx import OnnxScanner
from airflow_aisec.core.modelscan.formats.opaque import EmptyScanner, TextScanner
from airflow_aisec.core.modelscan.formats.pickle import PickleScanner
from airflow_aisec.core.modelscan.formats.safetensors import SAFETENSORS_MAX_HEADER, SafetensorsScanner

#: Tried in this order. Magic-byte formats come before the pickle scanner (a polyglot is caught by the
#: engine's gate afterwards); text is what remains when the pickle scanner declined.
SCANNERS: tuple[FormatScanner, ...] = (
    EmptyScanner(),
    ZipScanner(),
    NpyScanner(),
    CompressedScanner(),
    SafetensorsScanner(),
    GgufScanner(),
    Hdf5Scanner(),
    OnnxScanner(),
    PickleScanner(),
    TextScanner(),
)

__all__ = ["COMPRESSED_LABELS", "SAFETENSORS_MAX_HEADER", "SCANNERS", "FormatScanner", "Sniffed"]
