"""Running trainable (LLM-written) code in killable, locked-down worker processes.

`sandbox="process"` (the default for trainable bundles) runs each call in a worker of the
run's pool; `sandbox="none"` runs it in this process (trusted code, fastest). The mode a bundle
uses when it names none comes from `set_default_mode` / `sandbox_mode` (the harness sets it from
its config key `sandbox`). Guarantees and limits: README "Sandbox" and lockdown.py.
"""
from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Iterator

from trace_core.sandbox.executor import (FunctionSpec, SandboxError, SandboxExecutor, SandboxLimits,
                                         SandboxTimeout, WorkerCrashed)

MODES = ("process", "none")
_state = {"mode": "process"}
_executor: list[SandboxExecutor] = []
_lock = threading.Lock()


def enter_worker() -> None:
    """Called by a sandbox worker: bundles called inside it run in it (it has no pool of its own)."""
    _state["mode"], _state["worker"] = "none", True


def in_worker() -> bool:
    return _state.get("worker", False)


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"sandbox must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def default_mode() -> str:
    return _state["mode"]


def set_default_mode(mode: str) -> None:
    _state["mode"] = check_mode(mode)


@contextlib.contextmanager
def sandbox_mode(mode: str) -> Iterator[None]:
    """Within the block, bundles that name no sandbox mode use `mode`."""
    previous = _state["mode"]
    set_default_mode(mode)
    try:
        yield
    finally:
        _state["mode"] = previous


def default_executor() -> SandboxExecutor:
    """The process-wide pool (started on first use, stopped at exit)."""
    with _lock:
        if not _executor:
            _executor.append(SandboxExecutor())
        return _executor[0]


def shutdown() -> None:
    with _lock:
        while _executor:
            _executor.pop().close()


atexit.register(shutdown)

__all__ = ["FunctionSpec", "MODES", "SandboxError", "SandboxExecutor", "SandboxLimits", "SandboxTimeout",
           "WorkerCrashed", "check_mode", "default_executor", "default_mode", "enter_worker", "in_worker", "sandbox_mode",
           "set_default_mode", "shutdown"]
