"""The sandbox worker: `python -m trace_core.sandbox <read fd> <write fd> <settings json>`.

A fresh interpreter (nothing of the parent's memory) that imports the modules it is told to,
locks itself down (lockdown.py), then answers calls one at a time. Each call execs the
function's source in a fresh copy of its module's globals, so no state carries from one call to
the next through globals; a call that changed builtins or a module the function can see is
reported `dirty` and the parent retires the worker. Requests come pickled from the trusted
parent; everything sent back is JSON (codec.py).
"""
from __future__ import annotations

import ast
import builtins
import importlib
import io
import json
import os
import pickle
import resource
import struct
import sys
import traceback
import types
from typing import Any

from trace_core.code import _cell_runner, _nested_in_cells
from trace_core.graph import Node
from trace_core.sandbox import codec
from trace_core.sandbox.rebuild import Loaded, effects, top_prints

HEADER = struct.Struct("!I")
ANSWER = b"answer\n"  # a proxy call's answer starts with this (a call's request never does: it is a pickle)


class Channel:
    """Length-prefixed messages over two pipe descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd, self.buffer = read_fd, write_fd, bytearray()

    def send(self, payload: bytes) -> None:
        data = HEADER.pack(len(payload)) + payload
        while data:
            data = data[os.write(self.write_fd, data):]

    def receive(self) -> bytes:
        size, = HEADER.unpack(self._exactly(HEADER.size))
        return self._exactly(size)

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:  # ends: each pass reads data or the parent closed the pipe
            chunk = os.read(self.read_fd, max(n - len(self.buffer), 1 << 16))
            if not chunk:
                raise EOFError("the parent closed the channel")
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data


class Proxy:
    """Stands in the worker for a parent object that is not plain data: its repr, and the
    methods its class lists in `sandbox_methods`, called in the parent. Nothing else."""

    def __init__(self, ref: int, text: str, methods: tuple[str, ...]) -> None:
        self._ref, self._text, self._methods = ref, text, methods

    def __repr__(self) -> str:
        return self._text

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_"):  # loudly: the change could never reach the object
            raise AttributeError(f"{self._text}: cannot set `{name}` inside the sandbox; the object stays "
                                 f"outside (only its methods {', '.join(self._methods) or 'none'} can be called)")
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._methods:
            raise AttributeError(f"{self._text}: `{name}` is not available inside the sandbox "
                                 f"(callable methods: {', '.join(self._methods) or 'none'})")
        return lambda *args, **kwargs: WORKER.call_parent(self._ref, name, args, kwargs)


class Worker:
    def __init__(self, channel: Channel) -> None:
        self.channel, self.nonce = channel, ""
        self.loaded = Loaded(Proxy, define)
        self.snapshots: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

    def serve(self) -> None:
        while True:  # ends when the parent closes the channel (or kills this process)
            try:
                request = self._receive()
            except EOFError:
                return
            except Exception as exc:  # arguments this interpreter cannot rebuild: the call fails
                self._send({"op": "error", "phase": "define", "type": type(exc).__name__, "line": None,
                            "message": f"the arguments could not be rebuilt in the sandbox: {exc}"})
                continue
            self._send(self.handle(request))

    def _receive(self) -> dict[str, Any]:
        """`nonce` newline pickle: the nonce is read first, so even a failed unpickle is answered."""
        nonce, _, body = self.channel.receive().partition(b"\n")
        self.nonce = nonce.decode()
        if body.startswith(ANSWER):
            return self.loaded.load(body[len(ANSWER):])  # a proxy call's answer
        self.loaded = Loaded(Proxy, define)  # a new call: the last one's objects are let go
        static, cells, args, kwargs, overrides = self.loaded.load(body)
        return {**self.loaded.load(static), "cells": cells, "args": args, "kwargs": kwargs,
                "overrides": overrides}

    def _send(self, reply: dict[str, Any]) -> None:
        reply["nonce"] = self.nonce
        try:
            payload = codec.encode_message(reply, ref_of=self.loaded.ref_of)
        except (codec.CodecError, RecursionError, ValueError, OverflowError) as exc:
            payload = codec.encode_message({"op": "error", "phase": "result", "type": "TypeError",
                                            "message": str(exc), "frames": [], "nonce": self.nonce,
                                            "dirty": reply.get("dirty", False)})
        self.channel.send(payload)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        PRINTS.seek(0)
        PRINTS.truncate()  # prints of the code go nowhere (and never fill a pipe)
        phase, watched = "define", []
        cells = {name: types.CellType(value) for name, value in request["cells"].items()}
        tops = {"a": dict(enumerate(request["args"])), "k": request["kwargs"], "c": request["cells"],
                "o": request["overrides"]}
        before = top_prints(tops)
        try:
            watched = self.remember(watched_namespaces(request))
            fn = define(request, cells)
            phase = "call"
            value = fn(*request["args"], **request["kwargs"])
            if isinstance(value, types.CoroutineType):
                value = run_coroutine(value)
            reply = {"op": "result", "value": value._data if isinstance(value, Node) else value}
        except BaseException as exc:  # noqa: B902 - SystemExit/KeyboardInterrupt are the code's too
            reply = {"op": "error", "phase": phase, **describe(exc, request["filename"])}
        tops["c"] = {name: cell.cell_contents for name, cell in cells.items() if cell != types.CellType()}
        try:
            reply["effects"] = effects(self.loaded, tops, before)
        except codec.CodecError as exc:
            reply = {"op": "error", "phase": "call", "type": "TypeError", "message": str(exc), "line": None,
                     "frames": []}
        reply["cells"] = {name: cells[name].cell_contents for name in request["rebinds"]
                          if name in cells and cells[name] != types.CellType()}  # not a deleted one
        reply["dirty"] = self.tampered(watched)
        reply["cpu"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        return reply

    def remember(self, watched: list[tuple[dict[str, Any], bool]]) -> list[tuple[dict[str, Any], bool]]:
        """Snapshot namespaces seen for the first time, before any code of the call runs."""
        for namespace, _ in watched:
            if id(namespace) not in self.snapshots:  # kept with the namespace, so its id stays its own
                self.snapshots[id(namespace)] = (namespace, dict(namespace))
        return watched

    def tampered(self, watched: list[tuple[dict[str, Any], bool]]) -> bool:
        """Did the call rebind builtins, or a name in a module the function can see or this
        worker runs on? Then later calls must not run here (the parent retires the worker)."""
        for namespace, strict in watched:
            before = self.snapshots[id(namespace)][1]
            if _same(namespace, before):
                continue
            if strict or any(k not in namespace or namespace[k] is not v for k, v in before.items()):
                return True
            before.update(namespace)  # only new names (a submodule imported on first use)
        return False

    def call_parent(self, ref: int, method: str, args: tuple, kwargs: dict) -> Any:
        """Ask the parent to run `method` of the object behind a proxy; wait for its answer."""
        self._send({"op": "proxy", "ref": ref, "method": method, "args": list(args), "kwargs": kwargs})
        answer = self._receive()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["value"]


def _same(namespace: dict[str, Any], before: dict[str, Any]) -> bool:
    try:
        return bool(namespace == before)  # identity first: a C-speed check of every entry
    except Exception:  # an entry whose == is not a bool (an array that was replaced)
        return False


def module_namespace(request: dict[str, Any]) -> dict[str, Any]:
    """The globals the function's code sees: its module's (imported here) or those sent."""
    if request["module"] is not None:
        return vars(importlib.import_module(request["module"]))
    namespace = {"__builtins__": builtins, "__name__": "__sandbox__"}
    for name, module in request["modules"].items():
        namespace[name] = importlib.import_module(module)
    namespace.update(request["globals"])
    return namespace


def watched_namespaces(request: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    """(namespace, strict): builtins and this worker's own code (any change counts); the
    function's module and the modules its code names, directly or through a global such as
    `np` (new names do not count there). Kept per function: the check runs on every call."""
    key = (request["module"], request["source"], request["filename"], tuple(request["cells"]))
    if request["module"] is not None and key in _WATCHED:
        return _WATCHED[key]
    base = module_namespace(request)
    names = code_names(compiled(request["source"], request["filename"], tuple(request["cells"])))
    spaces = [(vars(builtins), True), (vars(sys.modules[__name__]), True), (vars(codec), True),
              (vars(json), True), (vars(pickle), True)]
    if request["module"] is not None:  # otherwise `base` is built afresh for every call
        spaces.append((base, False))
    modules = [base[n] for n in names if isinstance(base.get(n), types.ModuleType)]
    modules += [sys.modules[n] for n in names if n in sys.modules]
    spaces += [(vars(m), False) for m in dict.fromkeys(modules) if m is not builtins]
    if request["module"] is not None:
        if len(_WATCHED) >= 64:
            _WATCHED.pop(next(iter(_WATCHED)))
        _WATCHED[key] = spaces
    return spaces


_WATCHED: dict[tuple, list[tuple[dict[str, Any], bool]]] = {}
def code_names(code: types.CodeType) -> set[str]:
    """Every name the code and the functions inside it use (module names among them)."""
    names, stack = set(), [code]
    while stack:  # ends: a code object holds finitely many nested ones
        current = stack.pop()
        names.update(current.co_names)
        stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    return names


_COMPILED: dict[tuple[str, str, tuple[str, ...]], types.CodeType] = {}


def compiled(source: str, filename: str, cells: tuple[str, ...] = ()) -> types.CodeType:
    """Compiling is most of a small call's cost: keep the last few sources' code objects.
    With `cells`, the code is nested where those names are free variables (trace_core.code)."""
    key = (source, filename, cells)
    if key not in _COMPILED:
        if len(_COMPILED) >= 64:
            _COMPILED.pop(next(iter(_COMPILED)))
        tree = ast.parse(source, filename)
        _COMPILED[key] = compile(_nested_in_cells(tree, cells) if cells else tree, filename, "exec")
    return _COMPILED[key]


def define(request: dict[str, Any], cells: dict[str, types.CellType]) -> Any:
    """The function the source defines, in fresh globals; closure names read (and `nonlocal`
    writes) the given cells, whose values the parent sent and gets back."""
    scope = dict(module_namespace(request))
    scope.update(request["closure"])
    scope.update(request.get("overrides", {}))  # the caller's current values of the names the code reads
    code = compiled(request["source"], request["filename"], tuple(cells))
    if cells:
        defined = _cell_runner(code, scope, cells)()
    else:
        exec(code, scope)
        defined = scope
    fn = defined.get(request["name"])
    if not callable(fn) or isinstance(fn, type):  # a decorated function may be a wrapper object
        raise NameError(f"the code must define a function named `{request['name']}`")
    return fn


def run_coroutine(coroutine: types.CoroutineType) -> Any:
    """An async function's value, without an event loop (a loop needs a socketpair, which the
    sandbox refuses): fine for code that awaits other coroutines, not for timers or I/O."""
    while True:  # ends: the parent kills a worker past its time limit
        try:
            yielded = coroutine.send(None)
        except StopIteration as stop:
            return stop.value
        if yielded is not None:
            coroutine.close()
            raise RuntimeError("the sandbox runs async code without an event loop: it cannot "
                               "await timers, I/O or futures")


def describe(exc: BaseException, filename: str) -> dict[str, Any]:
    """The exception as data; `line` is the failing line within the trainable source."""
    frames = traceback.extract_tb(exc.__traceback__)
    line = next((f.lineno for f in reversed(frames) if f.filename == filename), None)
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
    try:
        message = str(exc)
    except Exception:  # a str() that raises is the code's problem, not the worker's
        message = "<unprintable>"
    return {"type": type(exc).__name__, "message": message[:4000], "line": line,
            "frames": [[f.filename, f.lineno, f.name, f.line or ""] for f in frames[-20:]]}


WORKER: Worker
PRINTS = io.StringIO()


def main(argv: list[str]) -> None:
    global WORKER
    from trace_core.sandbox import lockdown
    read_fd, write_fd, settings = int(argv[0]), int(argv[1]), json.loads(argv[2])
    channel = Channel(read_fd, write_fd)
    for name in settings["preload"]:
        try:
            importlib.import_module(name)
        except Exception:  # imported (or reported) again at the first call that needs it
            pass
    from trace_core import sandbox
    sandbox.enter_worker()  # bundles called here run here: this process is the sandbox
    layers = lockdown.apply(os.getcwd(), settings["memory_mb"], settings["cpu_s"], settings["file_mb"])
    sys.stdout = sys.stderr = PRINTS
    WORKER = Worker(channel)
    channel.send(codec.encode_message({"op": "ready", "layers": layers}))
    try:
        WORKER.serve()
    except BaseException:  # a fault of the worker itself: say what it was where the parent keeps it
        os.write(2, traceback.format_exc().encode())
        raise


