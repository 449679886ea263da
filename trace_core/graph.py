"""Nodes that record the computation they take part in.

    from trace_core import node
    x = node(-1.0, trainable=True, name="x")
    y = x * 2 + 1            # a MessageNode: x -> multiply -> add
    y.data                   # -1.0

A node wraps a value and behaves like it: arithmetic, comparisons, indexing, attribute access and
method calls on a node return new nodes that remember the operator and the input nodes. `==`
stays a plain comparison (so `in` and dict keys work); use `.eq()` for a recorded one.

Names are unique within a graph context (`graph_context()`), not process-wide: every run (and
every thread) gets its own numbering, so nothing global grows or races.
"""
from __future__ import annotations

import contextvars
import copy
import itertools
import operator
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from trace_core.reads import _READS, _TRACING, note_made


class Graph:
    """A naming scope: hands out `base:k` names. Nodes keep their own links, so the graph owns no
    node and nothing outlives the run that made it."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count] = {}

    def new_name(self, base: str) -> str:
        # setdefault and next() on itertools.count are each atomic under the GIL; the get first
        # spares building a counter on every call (this runs twice per traced operation).
        counter = self._counters.get(base) or self._counters.setdefault(base, itertools.count())
        return f"{base}:{next(counter)}"


_CURRENT: contextvars.ContextVar[Graph | None] = contextvars.ContextVar("trace_core_graph", default=None)


def current_graph() -> Graph:
    graph = _CURRENT.get()
    if graph is None:  # first node in this thread / context: give it its own scope
        graph = Graph()
        _CURRENT.set(graph)
    return graph


@contextmanager
def graph_context(graph: Graph | None = None) -> Iterator[Graph]:
    """A fresh naming scope for one run (or one optimization step)."""
    token = _CURRENT.set(graph or Graph())
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


@dataclass(frozen=True)
class Operator:
    """What an operation is, for the optimizer's report: `name(arg=..)` and its documentation."""

    name: str
    doc: str


class Node:
    """A value in the graph. Roots have no parents; `MessageNode`s are results of operators."""

    __slots__ = ("_data", "name", "description", "constraint", "parents", "inputs", "op", "level",
                 "_children", "__weakref__")
    trainable = False

    def __init__(self, value: Any, name: str | None = None, description: str | None = None,
                 constraint: str | None = None) -> None:
        self._data = value
        self.name = current_graph().new_name(name or type(value).__name__)
        self.description = description or ""
        self.constraint = constraint
        self.parents: tuple[Node, ...] = ()
        self.inputs: dict[str, Node] = {}
        self.op: Operator | None = None
        self.level = 0
        self._children: weakref.ref | list[weakref.ref] | None = None  # see MessageNode

    @property
    def data(self) -> Any:
        reads = _READS.get()
        if reads is not None:  # inside a bundled call: this value was read
            reads.used.append(self)
        return self._data

    @property
    def py_name(self) -> str:
        """The name as an identifier (`x:0` -> `x0`): what the optimizer sees and echoes back."""
        return self.name.replace(":", "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}={self._data!r})"

    def __str__(self) -> str:
        return str(self._data)

    # Plain (unrecorded) protocol methods Python requires to return plain types.
    def __bool__(self) -> bool:
        return bool(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: Any) -> bool:
        return self._data == (other._data if isinstance(other, Node) else other)

    __hash__ = object.__hash__

    def __iter__(self) -> Iterator[Node]:
        """Recorded items (a dict yields its keys); a value that cannot be iterated raises an
        ExecutionError, so `a, b = traced()` on a bad result is feedback like any failure."""
        data = self._data
        if isinstance(data, dict):
            sequence = _MethodCall(self, "keys")()
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            sequence = self
        else:  # sets, generators, and values that are not iterable at all
            sequence = apply_op(_OPS["to_list"], list, x=self)
        for i in range(len(sequence._data)):
            yield sequence[i]

    @property
    def children(self) -> list[Node]:
        """The results computed from this node that are still alive (held weakly, so a
        long-lived parameter does not keep every graph it took part in)."""
        refs = self._children
        if refs is None:
            return []
        if type(refs) is weakref.ref:  # one child (the common case) is held without a list
            refs = [refs]
        return [child for child in (ref() for ref in refs) if child is not None]

    def __deepcopy__(self, memo: dict[int, Any]) -> Node:
        """A copy with copied value and links; results computed from the original are not its."""
        twin = copy.copy(self)
        memo[id(self)] = twin
        for slot in ("_data", "parents", "inputs"):
            setattr(twin, slot, copy.deepcopy(getattr(self, slot), memo))
        twin._children = None
        return twin

    def clone(self) -> MessageNode:
        """A recorded deep copy of the value."""
        return apply_op(_OPS["clone"], copy.deepcopy, x=self)

    # Recorded operations.
    def __getattr__(self, attr: str) -> Any:
        """`node(obj).x`, recorded as getattr(obj, name). When obj.x holds a node, that node is a
        third parent (`held`, see apply_op): upstream Trace records only (obj, name), so a
        trainable node kept as an attribute (an agent's prompt) gets no feedback through this
        read. We keep the dependency; in the report it is one more input line of the call."""
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = getattr(self._data, attr)  # AttributeError propagates untouched
        if callable(value) and not isinstance(value, Node):
            return _MethodCall(self, attr)
        return apply_op(_OPS["getattr"], lambda obj, name: getattr(obj, name), obj=self,
                        name=constant(attr, "str"))

    def __getitem__(self, key: Any) -> MessageNode:
        return apply_op(_OPS["getitem"], lambda obj, key: obj[key], obj=self, key=key)

    def __call__(self, *args: Any, **kwargs: Any) -> MessageNode:
        call = _call_with(len(args), list(kwargs))
        if self.op is _BY_NAME:  # a method read by name keeps upstream's shape when called
            call = _giving_values(call)
        return apply_op(_OPS["call"], call, **_with_first("fn", self, _argument_inputs(args, kwargs)))

    def getattr(self, name: str) -> MessageNode:
        """Upstream Trace's read by name: recorded from (obj, name) only, so a node held there
        gives its value and is no parent (attribute syntax keeps it, see __getattr__), and a
        method read so, when called, gives the value of a node it returns."""
        return apply_op(_BY_NAME, _attribute_value, obj=self, name=constant(name, "str"))

    def call(self, name: str, *args: Any, **kwargs: Any) -> MessageNode:
        """Upstream's `obj.call("method", *args)`: getattr(name), then the call."""
        return self.getattr(name)(*args, **kwargs)

    def eq(self, other: Any) -> MessageNode:
        return apply_op(_OPS["eq"], operator.eq, x=self, y=other)  # _OPS["eq"]: trace_core.operators

    def neq(self, other: Any) -> MessageNode:
        return apply_op(_OPS["ne"], operator.ne, x=self, y=other)


class ParameterNode(Node):
    """A trainable root: what optimizers change (`data` is replaced on update)."""

    __slots__ = ()
    trainable = True


class MessageNode(Node):
    """The result of an operator applied to input nodes."""

    __slots__ = ()

    def __init__(self, value: Any, op: Operator, inputs: dict[str, Node],
                 name: str | None = None) -> None:
        # Node.__init__ written out: this runs once per traced operation (scripts/bench.py trace).
        self._data = value
        self.name = current_graph().new_name(name or op.name)
        self.description = op.doc
        self.constraint = None
        self.op = op
        self.inputs = inputs
        self.parents = parents = tuple(inputs.values())
        level = 0
        for parent in parents:
            if parent.level >= level:
                level = parent.level + 1
        self.level = level
        self._children = None
        # Children are held weakly; a parent with one child holds the bare weakref (most nodes
        # have one), and a list from the second on, pruned of dead links as it doubles.
        me = weakref.ref(self)
        for parent in parents:
            children = parent._children
            if children is None:
                parent._children = me
            elif type(children) is weakref.ref:
                parent._children = [children, me]
            else:
                children.append(me)
                if len(children) >= 64 and len(children) & (len(children) - 1) == 0:
                    children[:] = [ref for ref in children if ref() is not None]


class ExceptionNode(MessageNode):
    """An operator that raised: `data` is the error text the optimizer gets as feedback."""

    __slots__ = ()


class ExecutionError(Exception):
    """Raised by a traced call that failed; `exception_node` is where backward starts from."""

    def __init__(self, exception_node: ExceptionNode) -> None:
        super().__init__(exception_node.data)
        self.exception_node = exception_node


def node(value: Any, trainable: bool = False, name: str | None = None,
         description: str | None = None, constraint: str | None = None) -> Node:
    """Wrap a value (a Node passes through unless it is to become trainable)."""
    if isinstance(value, Node):
        if not trainable:
            return value
        name = name or value.name.split(":")[0]
        value = value.data
    cls = ParameterNode if trainable else Node
    return cls(value, name=name, description=description, constraint=constraint)


def constant(value: Any, name: str | None = None) -> Node:
    return value if isinstance(value, Node) else Node(value, name=name)


def error_text(exc: BaseException) -> str:
    return f"({type(exc).__name__}) {exc}"


def apply_op(op: Operator, fn: Callable[..., Any], /, **inputs: Any) -> MessageNode:
    """Run `fn` on the inputs' values and record the call. Non-node inputs become constant nodes.

    An exception inside `fn` becomes an ExceptionNode with the same inputs, raised inside an
    ExecutionError, so the failure itself can be backwarded as feedback. A result that is itself
    a node (an item or attribute holding one) gives its value, and that node joins the inputs as
    `held`: data never holds a node, and the dependency on it is kept.
    """
    nodes = {k: v if isinstance(v, Node) else Node(v) for k, v in inputs.items()}  # named by type
    values = [n._data for n in nodes.values()]
    if not _TRACING.get():  # stop_tracing(): the result keeps no link to what it came from
        nodes = {}
    try:
        value = fn(*values)
    except Exception as exc:  # the one place a failing traced operation becomes feedback
        raise ExecutionError(ExceptionNode(error_text(exc), op, nodes, name="exception")) from exc
    if isinstance(value, Node):
        if _TRACING.get():
            nodes = _with_first("held", value, nodes, last=True)
        value = value._data
    result = MessageNode(value, op, nodes)
    if _READS.get() is not None:
        note_made(result, nodes.values())
    return result


def lift(value: Any) -> Any:
    """A list, tuple, set or dict that holds nodes (at any depth) becomes a node recording its
    construction from them, so the values they hold reach the operation as inputs; anything
    else comes back unchanged."""
    kind = type(value)
    if kind is dict:
        values = [lift(v) for v in value.values()]
        if not any(isinstance(v, Node) for v in values):
            return value
        keys = list(value)
        op = _document("dict", f"Builds a dict with the keys {keys!r}, in order, from the values.")
        return apply_op(op, lambda *items: dict(zip(keys, items)),
                        **{f"value{i}": v for i, v in enumerate(values)})
    if kind in (list, tuple, set, frozenset):
        items = [lift(v) for v in value]
        if not any(isinstance(v, Node) for v in items):
            return value
        return apply_op(_OPS[kind.__name__], lambda *parts: kind(parts),
                        **{f"item{i}": v for i, v in enumerate(items)})
    return value


class _MethodCall:
    """`node.method` before it is called: calling it records `method(self, *args)`."""

    __slots__ = ("_owner", "_method")

    def __init__(self, owner: Node, method: str) -> None:
        self._owner, self._method = owner, method

    def __call__(self, *args: Any, **kwargs: Any) -> MessageNode:
        method, call = self._method, _call_with(len(args), list(kwargs))
        op = Operator(method, f"[{method}] Calls the {method} method of `obj` (a "
                              f"{type(self._owner._data).__name__}) with the other arguments.")
        return apply_op(op, lambda obj, *values: _no_view(call(getattr(obj, method), *values)),
                        **_with_first("obj", self._owner, _argument_inputs(args, kwargs)))


_DICT_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def _no_view(value: Any) -> Any:
    """dict views as lists: a view cannot be indexed, so its items could not be recorded."""
    return list(value) if isinstance(value, _DICT_VIEWS) else value


def _with_first(key: str, value: Node, inputs: dict[str, Any], last: bool = False) -> dict[str, Any]:
    """`inputs` plus `key`: value (first, or last), the key renamed if an argument took it."""
    while key in inputs:
        key += "_"
    return {**inputs, key: value} if last else {key: value, **inputs}


def _argument_inputs(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**{f"arg{i}": lift(a) for i, a in enumerate(args)}, **{k: lift(v) for k, v in kwargs.items()}}


def _attribute_value(obj: Any, name: str) -> Any:
    value = getattr(obj, name)
    return value._data if isinstance(value, Node) else value


def _giving_values(call: Callable[..., Any]) -> Callable[..., Any]:
    def by_value(*values: Any) -> Any:
        result = call(*values)
        return result._data if isinstance(result, Node) else result
    return by_value


def _call_with(n_positional: int, keywords: list[str]) -> Callable[..., Any]:
    """fn(*values) -> fn(first n values positionally, the rest as the named keywords)."""
    def call(fn: Callable[..., Any], *values: Any) -> Any:
        return fn(*values[:n_positional], **dict(zip(keywords, values[n_positional:])))
    return call


def _document(name: str, text: str) -> Operator:
    return Operator(name, f"[{name}] {text}")


_OPS: dict[str, Operator] = {
    "getattr": _document("getattr", "Reads attribute `name` of `obj`."),
    "getitem": _document("getitem", "Returns obj[key]."),
    "call": _document("call", "Calls the function `fn` with the other arguments."),
    "clone": _document("clone", "Returns a deep copy of x."),
    "to_list": _document("to_list", "Returns list(x): the items of x, in order."),
    **{kind: _document(kind, f"Builds a {kind} of the items, in order.")
       for kind in ("list", "tuple", "set", "frozenset")},
}
# The same documentation as _OPS["getattr"]; a distinct object, so a call can tell the two reads apart.
_BY_NAME = Operator("getattr", _OPS["getattr"].doc)
