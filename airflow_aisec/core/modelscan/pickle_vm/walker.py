"""The symbolic pickle machine: walk one pickle's opcodes through the dispatch table, never executing it."""

from __future__ import annotations

from typing import Any

from airflow_aisec.core.modelscan.context import Malformed, ScanContext
from airflow_aisec.core.modelscan.pickle_vm.handlers import HANDLERS
from airflow_aisec.core.modelscan.pickle_vm.opcodes import build_table, decode_binstring
from airflow_aisec.core.modelscan.pickle_vm.values import OPAQUE, Global, describe
from airflow_aisec.core.modelscan.policy import importable, normalize_global
from airflow_aisec.core.modelscan.results import FileScan, GlobalRef

#: byte -> :class:`~.opcodes.Op` (``None``: not an opcode), built once at import
OPCODES = build_table(HANDLERS)


class PickleWalker:
    """Walk one pickle in ``buf`` from ``pos`` to its STOP (the position after STOP is returned by
    :meth:`walk`). Records every global in ``scan.globals``; raises :class:`Malformed` on a broken stream.
    """

    def __init__(
        self,
        buf: Any,
        pos: int,
        scan: FileScan,
        ctx: ScanContext,
        *,
        joblib_arrays: bool = True,
        end: int | None = None,
    ) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.scan = scan
        self.ctx = ctx
        self.policy = ctx.policy
        self.joblib_arrays = joblib_arrays
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.proto = 0
        # joblib reads with the pure-Python unpickler: a FRAME is read into memory, so array data that
        # joblib reads "from the file" during a frame comes after the frame's end (see rd)
        self.frame_end: int | None = None
        self.file_pos = 0
        #: did the walk reach anything an unpickler would import or hand to a loader hook?
        self.reached = False
        self.result: Any = None
        #: end of the FRAME that was active when STOP was read (every unpickler has read the whole
        #: frame from the file: the next read after this pickle starts there, not after STOP)
        self.plain_frame_end = 0
        self.stop_frame_end = 0

    def nested(self, pos: int) -> PickleWalker:
        """A walker for the plain pickle joblib reads at ``pos`` (an object array's data)."""
        return PickleWalker(self.buf, pos, self.scan, self.ctx, joblib_arrays=False, end=self.end)

    # -- main loop
    def walk(self) -> int:
        buf, end, table = self.buf, self.end, OPCODES
        pos = self.pos
        st_ops = 0
        self.scan.pickles += 1
        try:
            while True:
                if st_ops >= 65536:
                    self.scan.opcodes += st_ops
                    self.ctx.count_ops(st_ops)
                    st_ops = 0
                if self.frame_end is not None:
                    pos = self.rd(pos)
                if pos >= end:
                    raise Malformed("pickle ended without STOP (truncated)")
                op = table[buf[pos]]
                if op is None:
                    raise Malformed(f"invalid opcode byte 0x{buf[pos]:02x} at byte {pos}")
                st_ops += 1
                arg, self.pos = op.read(self, pos + 1, op.name)
                if op.run(self, arg, pos):
                    return self.pos
                pos = self.pos  # a joblib array or nested pickle may have moved the cursor
        finally:
            self.scan.opcodes += st_ops
            self.ctx.ops += st_ops

    # -- stack
    def pop(self) -> Any:
        if not self.stack:
            raise Malformed("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise Malformed("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise Malformed("MARK expected")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    # -- globals and calls
    def make_global(self, module: Any, name: Any, opcode: str, pos: int) -> Global:
        """Classify (never import) the global an unpickler would import here; record it."""
        if not isinstance(module, str) or not isinstance(name, str):
            ref = GlobalRef(describe(module), describe(name), opcode, pos, "ambiguous")
            self.scan.globals.append(ref)
            self.reached = True
            return Global(ref)
        verdict = self.policy.classify(module, name)
        nmodule, nname = normalize_global(module, name)  # report what an unpickler would import
        ref = GlobalRef(nmodule, nname, opcode, pos, verdict)
        self.scan.globals.append(ref)
        if not importable(nmodule):
            # ``import`` of such a name fails with ordinary finders: the unpickler stops here
            raise Malformed(f"{opcode} at byte {pos} names a module that cannot be imported ({nmodule!r})")
        self.reached = True
        return Global(ref)

    def called(self, fn: Any, opcode: str, pos: int) -> None:
        if isinstance(fn, Global) and fn.ref is not None:
            fn.ref.called = True
            return
        # calling something that is not a statically known global: a computed object
        ref = GlobalRef("<computed>", describe(fn), opcode, pos, "ambiguous", called=True)
        self.scan.globals.append(ref)

    # -- reading arguments
    def str_arg(self, arg: tuple[int, int], *, utf8: bool) -> Any:
        p, n = arg
        raw = bytes(self.buf[p : p + n]) if n <= 1 << 16 else None
        if raw is None:
            return OPAQUE
        if utf8:
            try:
                return raw.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise Malformed("unicode argument is not UTF-8") from None
        return decode_binstring(raw)

    def read_line(self, pos: int) -> tuple[bytes, int]:
        j = self.buf.find(b"\n", pos, self.end)
        if j < 0:
            raise Malformed(f"line argument at byte {pos} has no newline (truncated)")
        return bytes(self.buf[pos:j]), j + 1

    def rd(self, pos: int, *, check_only: bool = False) -> int:
        """Where the next read really happens while a FRAME is active (joblib mode only).

        The pure-Python unpickler joblib uses reads a frame into memory; when it is exhausted reading
        goes on at the file cursor, which array data read by joblib during the frame has moved past the
        frame's end. A read that starts inside the frame and ends beyond it is an error there."""
        fe = self.frame_end
        if fe is None or pos < fe:
            return pos
        if pos > fe and self.file_pos != fe:
            raise Malformed(
                f"a read crosses the end of the frame at byte {fe} (joblib's unpickler fails)", certain=False
            )
        if check_only and pos == fe:
            return pos
        self.frame_end = None
        return self.file_pos if pos == fe else pos

    def need(self, pos: int, n: int, what: str) -> None:
        if n > self.end - pos:
            raise Malformed(f"{what} at byte {pos} declares {n} bytes, only {max(self.end - pos, 0)} left (truncated)")
