"""The parent side of the sandbox: a pool of worker processes that run trainable functions.

    executor = SandboxExecutor()
    value = executor.call(FunctionSpec.of(fn, source), args, kwargs, timeout_s=10)

A call goes to an idle worker (a fresh interpreter, see worker.py), or a new one while fewer
than `max_workers` run. Past its time limit the worker gets SIGKILL, whatever its code does; a
worker that dies (os._exit, a signal, the memory cap) or changed shared state is replaced.
Arguments travel pickled (the parent is trusted): ordinary objects by value, with the changes
the code makes to them set back here; objects whose class names `sandbox_methods` (and any that
cannot be pickled) as proxies, which expose only those methods, run here (transfer.py).
Results come back as tagged JSON (codec.py), which cannot run code in the parent.
"""
from __future__ import annotations

import collections
import concurrent.futures
import functools
import importlib.machinery
import json
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from typing import Any

from trace_core.sandbox import codec, transfer
from trace_core.sandbox.worker import ANSWER, HEADER, code_names

ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONHASHSEED", "SYSTEMROOT")
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
MAX_MESSAGE = 256 * 2**20
PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set,
               frozenset, range, slice, type(Ellipsis), collections.OrderedDict,
               collections.defaultdict, collections.deque, collections.Counter, pickle.PickleBuffer)


class SandboxError(Exception):
    """An exception raised by the code in the worker, as data: its type name, message, the
    line of the trainable source it happened at (`line`, None when elsewhere) and frames."""

    def __init__(self, type_name: str, message: str, line: int | None = None,
                 frames: list | None = None, phase: str = "call") -> None:
        super().__init__(message)
        self.type_name, self.message, self.line = type_name, message, line
        self.frames, self.phase = frames or [], phase

    def __str__(self) -> str:
        return f"({self.type_name}) {self.message}"


class WorkerCrashed(Exception):
    """The worker process died during the call; the message says how."""


class SandboxTimeout(Exception):
    """The call ran past its time limit; the worker was killed."""


@dataclass(frozen=True)
class SandboxLimits:
    memory_mb: int = 4096  # address space (RLIMIT_AS): includes the interpreter and its libraries
    cpu_s: int = 3600  # CPU seconds over a worker's life; workers retire at half of it
    file_mb: int = 64  # largest file the code may write in its folder
    startup_s: float = 120.0  # a loaded 2-core machine can take long to import numpy
    env_allow: tuple[str, ...] = ENV_ALLOW


@dataclass(frozen=True)
class FunctionSpec:
    """What a worker needs to rebuild a function: its source and where its globals come from."""
    source: str
    name: str
    filename: str
    module: str | None  # imported in the worker for the globals; None: `modules` and `globals`
    modules: dict[str, str] = field(default_factory=dict)
    globals: dict[str, Any] = field(default_factory=dict)
    closure: dict[str, Any] = field(default_factory=dict)  # extra globals (enclosing locals)
    cells: dict[str, Any] = field(default_factory=dict)  # free variables: name -> value (a call may pass its own)
    rebinds: tuple[str, ...] = ()  # names the code declares nonlocal: their new values come back

    def fields(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, "filename": self.filename, "module": self.module,
                "modules": self.modules, "globals": self.globals, "closure": self.closure,
                "rebinds": list(self.rebinds)}

    @functools.cached_property
    def pickled(self) -> tuple[bytes, dict[int, Any]]:
        """The fields as sent (pickled once: most of a small call's cost otherwise), and the
        objects among them that travel as proxies."""
        refs: dict[int, Any] = {}
        return _dumps(self.fields(), refs), refs

    @staticmethod
    def of(fn: types.FunctionType, source: str, filename: str | None = None) -> "FunctionSpec":
        """Spec of `fn` running `source` (a rewrite of fn's code); closure values go by value."""
        pairs = zip(fn.__code__.co_freevars, fn.__closure__ or ())
        cells = {name: cell.cell_contents for name, cell in pairs if cell != types.CellType()}
        module = fn.__module__ if _importable(fn.__module__) else None
        modules, plain = {}, {}
        if module is None:  # a script's function: its modules, and the plain values its code names
            used = code_names(fn.__code__)  # (not every global: a script may hold a key)
            for name, value in fn.__globals__.items():
                if isinstance(value, types.ModuleType):
                    modules[name] = value.__name__
                elif name in used and _plain(value):
                    plain[name] = value
        return FunctionSpec(source, fn.__name__, filename or f"<trainable {fn.__name__}>", module,
                            modules, plain, {}, cells)


@functools.lru_cache(maxsize=256)
def _importable(module: str | None) -> bool:
    """Can a worker (same sys.path, fresh interpreter) import `module`? Not __main__, nor a
    module loaded from a file path outside sys.path (a script imported by location)."""
    if module in (None, "__main__"):
        return False
    top = module.partition(".")[0]
    return top in sys.builtin_module_names or importlib.machinery.PathFinder.find_spec(top, sys.path) is not None


def _plain(obj: Any) -> bool:
    if type(obj) in PLAIN_TYPES or isinstance(obj, types.BuiltinFunctionType):
        return True
    if isinstance(obj, (type, types.FunctionType)):  # by reference: the worker imports it
        return _importable(obj.__module__) and "<locals>" not in obj.__qualname__
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return True  # a namedtuple: its fields are checked one by one
    numpy = sys.modules.get("numpy")
    return numpy is not None and (isinstance(obj, numpy.dtype) or (
        isinstance(obj, (numpy.ndarray, numpy.generic)) and not obj.dtype.hasobject))


def _dumps(message: Any, refs: dict[int, Any]) -> bytes:
    return transfer.dumps(message, refs, _plain)


def scrubbed_env(allow: tuple[str, ...], workdir: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in allow if k in os.environ}
    paths = [os.path.abspath(p or os.getcwd()) for p in sys.path]
    env.update({k: "1" for k in THREAD_VARS}, HOME=workdir, TMPDIR=workdir, PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=os.pathsep.join(p for p in dict.fromkeys(paths) if os.path.isdir(p)))
    return env


def _describe_death(returncode: int | None) -> str:
    if returncode is None:
        return "the function crashed the process: it stopped answering"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        why = {"SIGXCPU": " (CPU time limit)", "SIGSEGV": " (a segmentation fault)",
               "SIGKILL": " (killed: out of memory or by the OS)"}.get(name, "")
        return f"the function crashed the process: it was killed by {name}{why}"
    return (f"the function crashed the process: it ended the process with exit status {returncode} "
            "(os._exit, or a fatal error)")


class _Worker:
    """One worker process and the two pipes to it."""

    def __init__(self, limits: SandboxLimits, preload: list[str]) -> None:
        self.workdir = tempfile.mkdtemp(prefix="trace-sandbox-")
        to_worker_r, self.to_worker = os.pipe()
        self.from_worker, from_worker_w = os.pipe()
        self.errors = tempfile.TemporaryFile()
        settings = json.dumps({"preload": preload, "memory_mb": limits.memory_mb,
                               "cpu_s": limits.cpu_s, "file_mb": limits.file_mb})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trace_core.sandbox", str(to_worker_r), str(from_worker_w), settings],
            pass_fds=(to_worker_r, from_worker_w), cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.errors, env=scrubbed_env(limits.env_allow, self.workdir),
            start_new_session=True)
        os.close(to_worker_r)
        os.close(from_worker_w)
        os.set_blocking(self.to_worker, False)
        self.buffer, self.retire_at = bytearray(), limits.cpu_s / 2
        try:
            ready = codec.decode_message(self.receive(time.monotonic() + limits.startup_s))
        except (WorkerCrashed, SandboxTimeout, codec.CodecError) as exc:
            self.kill()
            self.errors.seek(0)
            raise WorkerCrashed(f"the sandbox worker did not start ({exc}): "
                                f"{self.errors.read()[-2000:].decode(errors='replace')}") from None
        self.layers: dict[str, str] = ready["layers"]

    def send(self, payload: bytes, deadline: float) -> None:
        """Write a message; a worker that stops reading runs into the deadline (non-blocking pipe)."""
        data = memoryview(HEADER.pack(len(payload)) + payload)
        while data:  # ends: each pass writes data, or the deadline passes, or the pipe is broken
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [self.to_worker], [], remaining)[1]:
                raise SandboxTimeout()
            try:
                data = data[os.write(self.to_worker, data):]
            except BlockingIOError:
                continue
            except OSError:  # BrokenPipeError among them: the worker is gone
                raise WorkerCrashed(_describe_death(self._wait_exit()) + self._last_words()) from None

    def receive(self, deadline: float) -> bytes:
        size, = HEADER.unpack(self._read(HEADER.size, deadline))
        if size > MAX_MESSAGE:
            raise WorkerCrashed(f"the function's result is larger than {MAX_MESSAGE // 2**20} MiB")
        return self._read(size, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        """`n` bytes, read as they come (a whole small message usually comes in one read)."""
        while len(self.buffer) < n:  # ends: each pass reads data, or the deadline passes, or the pipe closes
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.from_worker], [], [], remaining)[0]:
                raise SandboxTimeout()
            chunk = os.read(self.from_worker, max(n - len(self.buffer), 1 << 16))
            if not chunk:
                raise WorkerCrashed(_describe_death(self._wait_exit()) + self._last_words())
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def _last_words(self) -> str:
        """The worker's own fault, when it wrote one (the code's prints never reach stderr)."""
        try:
            self.errors.seek(0)
            text = self.errors.read()[-1500:].decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f"\n{text}" if text else ""

    def _wait_exit(self) -> int | None:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: nothing the code does can outlast it
        self._wait_exit()
        for fd in (self.to_worker, self.from_worker):
            try:
                os.close(fd)
            except OSError:
                pass
        self.errors.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class SandboxExecutor:
    """A pool of sandbox workers (one per concurrent call), shared by all bundles of a run."""

    def __init__(self, limits: SandboxLimits | None = None, max_workers: int = 8) -> None:
        self.limits, self.max_workers = limits or SandboxLimits(), max(1, int(max_workers))
        self._idle: list[_Worker] = []
        self._running = 0
        self._condition = threading.Condition()
        self._preload = ["re", "math"] + (["numpy"] if "numpy" in sys.modules else [])
        # Workers die with the thread that started them (PR_SET_PDEATHSIG follows the thread):
        # one long-lived thread starts them all, not the short-lived threads that call.
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawner")
        self.layers: dict[str, str] = {}

    def call(self, spec: FunctionSpec, args: tuple | list, kwargs: dict[str, Any], timeout_s: float,
             cells: dict[str, Any] | None = None, cells_out: dict[str, Any] | None = None,
             overrides: dict[str, Any] | None = None, called: list[Any] | None = None) -> Any:
        """Run spec's function on the arguments in a worker; its value, or SandboxError,
        SandboxTimeout or WorkerCrashed (the worker is then replaced). `cells`: the closure's
        current values (default spec.cells); the new values of the cells the code rebinds
        (`spec.rebinds`) go into `cells_out`. `overrides`: globals as the caller has them now.
        What the code changed on objects that travelled by value is set on them here (see
        transfer.py), whether the call returned or raised; the bundled functions it called
        go into `called`."""
        if spec.module is not None and spec.module not in self._preload:
            self._preload.append(spec.module)  # workers started from now on import it up front
        static, static_refs = spec.pickled
        refs = dict(static_refs)
        nonce = os.urandom(16).hex()  # so a message the code forged for a later call is ignored
        cells = spec.cells if cells is None else cells
        request = (static, cells, list(args), dict(kwargs), overrides or {})
        payload = nonce.encode() + b"\n" + _dumps(request, refs)
        worker = self._acquire()
        healthy = False
        try:
            reply = self._exchange(worker, payload, nonce, refs, time.monotonic() + timeout_s)
            healthy = not reply.get("dirty", True) and float(reply.get("cpu", 0)) < worker.retire_at
        except SandboxTimeout:
            raise SandboxTimeout(f"timed out after {timeout_s:g} s") from None
        finally:
            self._release(worker, healthy)
        done = transfer.apply_effects(reply.get("effects"), {"a": args, "k": kwargs, "c": cells,
                                                            "o": overrides or {}}, refs)
        if called is not None:
            called.extend(done)
        if cells_out is not None and type(reply.get("cells")) is dict:
            cells_out.update((k, v) for k, v in reply["cells"].items() if k in spec.rebinds)
        if reply["op"] == "error":
            raise SandboxError(str(reply["type"]), str(reply["message"]), reply.get("line"),
                               reply.get("frames"), str(reply.get("phase", "call")))
        return reply["value"]

    def _exchange(self, worker: _Worker, payload: bytes, nonce: str, refs: dict[int, Any],
                  deadline: float) -> dict[str, Any]:
        worker.send(payload, deadline)
        while True:  # ends: every message is the answer or consumes time up to the deadline
            message = codec.decode_message(worker.receive(deadline), refs)
            if message.get("nonce") != nonce:
                continue
            if message.get("op") != "proxy":
                return message
            answer = _dumps(self._serve_proxy(message, refs), refs)
            worker.send(nonce.encode() + b"\n" + ANSWER + answer, deadline)

    @staticmethod
    def _serve_proxy(message: dict[str, Any], refs: dict[int, Any]) -> dict[str, Any]:
        target, method = refs.get(message.get("ref")), message.get("method")
        allowed = tuple(getattr(type(target), "sandbox_methods", ()))
        if target is None or method not in allowed:
            return {"error": f"`{method}` is not callable from the sandbox"}
        try:
            return {"value": getattr(target, method)(*message["args"], **message["kwargs"])}
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}

    def _acquire(self) -> _Worker:
        with self._condition:
            while not self._idle and self._running >= self.max_workers:  # ends: calls are time-limited
                self._condition.wait()
            if self._idle:
                return self._idle.pop()
            self._running += 1
        try:
            worker = self._spawner.submit(_Worker, self.limits, list(self._preload)).result()
        except BaseException:
            with self._condition:
                self._running -= 1
                self._condition.notify()
            raise
        self.layers = worker.layers
        return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._condition:
            if healthy:
                self._idle.append(worker)
            else:
                self._running -= 1
            self._condition.notify()
        if not healthy:
            worker.kill()

    def close(self) -> None:
        """Stop every idle worker (a busy one stops when its call returns)."""
        with self._condition:
            idle, self._idle = self._idle, []
            self._running -= len(idle)
        for worker in idle:
            worker.kill()
