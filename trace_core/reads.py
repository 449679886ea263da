"""What a bundled call touches while it runs: the check that every node it used reached it as an
input (trace_core.bundle) is built on this. And whether operations are recorded at all
(`stop_tracing`), the other piece of per-context state the graph consults. Node.data and apply_op report here, at the cost of one
context-variable lookup when no bundled call is running."""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

# The nodes here are trace_core.graph.Node objects; this module stays below graph (graph imports it),
# so it names them `Any` rather than importing graph back.
Node = Any


class Reads:
    """The nodes a bundled call touched while it ran (their values read, or operated on), and
    the nodes it made: bundle checks that every used node reached it as an input."""

    __slots__ = ("used", "made")

    def __init__(self) -> None:
        self.used: list[Node] = []
        self.made: dict[int, Node] = {}  # id -> node, held so an id is not reused meanwhile


_READS: contextvars.ContextVar[Reads | None] = contextvars.ContextVar("trace_core_reads", default=None)


@contextmanager
def recording_reads() -> Iterator[Reads]:
    """Collect what the code run inside touches (nested bundles each collect their own)."""
    reads = Reads()
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


def note_made(made: Node, inputs: Iterable[Node]) -> None:
    """Tell an enclosing bundled call that `made` was computed here from `inputs`."""
    reads = _READS.get()
    if reads is not None:
        reads.used.extend(inputs)
        reads.made[id(made)] = made


# False inside stop_tracing(): operations compute their value and record no inputs.
_TRACING: contextvars.ContextVar[bool] = contextvars.ContextVar("trace_core_tracing", default=True)


@contextmanager
def stop_tracing() -> Iterator[None]:
    """Operations inside give nodes with no parents: a computation (logging, a metric) the
    optimizer should not see as part of the graph."""
    token = _TRACING.set(False)
    try:
        yield
    finally:
        _TRACING.reset(token)


def is_tracing() -> bool:
    return _TRACING.get()
