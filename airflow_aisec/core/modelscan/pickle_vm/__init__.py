"""A symbolic pickle machine: decodes the opcodes itself and tracks literals through the stack and memo,
never importing, calling or unpickling anything (see :mod:`.walker`, :mod:`.handlers`)."""

from airflow_aisec.core.modelscan.pickle_vm.opcodes import LAYOUT, PICKLE_OPCODE_BYTES, Op
from airflow_aisec.core.modelscan.pickle_vm.walker import OPCODES, PickleWalker

__all__ = ["LAYOUT", "OPCODES", "PICKLE_OPCODE_BYTES", "Op", "PickleWalker"]
