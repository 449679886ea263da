"""Issue 28: Trace's contract holds in the default sandbox as in-process. A trainable function
used by another trainable function runs with its current code, its code parameter becomes an
input of the outer call and feedback reaches both; state the code changes (attributes of self,
appends to a global list) reaches the caller's objects, or fails loudly; plain global and
nonlocal nodes, bundled methods of plain base classes and returned plain functions work."""
from __future__ import annotations

import math
import os

import pytest

from trace_core import ExecutionError, backward, bundle, graph_context, node
from trace_core.sandbox import sandbox_mode

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandbox needs a POSIX system")
MODES = ["process", "none"]

MEMORY: list[int] = [1, 2, 3]
GREETING = node("hello", name="greeting")


@bundle(trainable=True)
def add_one(a):
    """Returns a + 1."""
    return a + 1


@bundle(trainable=True)
def add_two(b):
    """Returns add_one(b) + 1."""
    return add_one(b) + 1


@bundle(trainable=True)
def apply_twice(f, b):
    """Returns f(f(b))."""
    return f(f(b))


@pytest.mark.parametrize("mode", MODES)
def test_a_trainable_function_called_from_the_globals_is_an_input_and_gets_feedback(mode):
    with graph_context(), sandbox_mode(mode):
        y = add_two(node(3, name="b"))
        assert y.data == 5
        assert add_one.parameter in y.parents and add_two.parameter in y.parents
        assert set(backward(y, "make it larger").parameters) >= {add_one.parameter, add_two.parameter}


@pytest.mark.parametrize("mode", MODES)
def test_a_trainable_function_passed_as_an_argument_is_an_input_and_runs_its_current_code(mode):
    with graph_context(), sandbox_mode(mode):
        add_one.parameter._data = add_one._source[0].replace("a + 1", "a + 10")
        try:
            y = apply_twice(add_one, node(1, name="b"))
        finally:
            add_one.parameter._data = add_one._source[0]
        assert y.data == 21
        assert add_one.parameter in y.parents and apply_twice.parameter in y.parents
        assert set(backward(y, "smaller").parameters) >= {add_one.parameter, apply_twice.parameter}


class Counter:
    def __init__(self) -> None:
        self.x, self.memory = 1, []

    @bundle(trainable=True)
    def step(self, item):
        """Remembers the item."""
        self.x = 2
        self.memory.append(item)
        return len(self.memory)


@pytest.mark.parametrize("mode", MODES)
def test_attributes_the_code_sets_on_self_reach_the_callers_object(mode):
    with graph_context(), sandbox_mode(mode):
        counter = Counter()
        assert counter.step("a").data == 1 and counter.step("b").data == 2
        assert counter.x == 2 and counter.memory == ["a", "b"]


@bundle(trainable=True)
def remember(item):
    """Appends the item to MEMORY."""
    MEMORY.append(item)
    return len(MEMORY)


@pytest.mark.parametrize("mode", MODES)
def test_an_append_to_a_global_list_reaches_the_callers_list(mode):
    before = list(MEMORY)
    try:
        with graph_context(), sandbox_mode(mode):
            remember(4)
        assert MEMORY == before + [4]
    finally:
        MEMORY[:] = before


class Guarded:
    sandbox_methods = ("ask",)  # stays in the parent: the sandbox sees a proxy

    def ask(self, text):
        return text


@bundle(trainable=True)
def tag(agent, text):
    """Tags the agent."""
    agent.tagged = True
    return text


def test_a_change_that_cannot_come_back_fails_loudly():
    agent = Guarded()
    with graph_context(), sandbox_mode("process"), pytest.raises(ExecutionError, match="tagged"):
        tag(agent, "hi")
    assert not hasattr(agent, "tagged")


@bundle(trainable=True)
def greet(name):
    """Greets by name."""
    return GREETING.data + " " + name


@pytest.mark.parametrize("mode", MODES)
def test_the_code_reads_a_plain_global_and_a_nonlocal_node(mode):
    suffix = node("!", name="suffix")

    @bundle(trainable=True)
    def shout(name):
        """Greets loudly."""
        return GREETING.data + " " + name + suffix.data

    with graph_context(), sandbox_mode(mode):
        assert greet("ann").data == "hello ann"
        assert shout("bob").data == "hello bob!"


class Base:
    @bundle()
    def double(self, x):
        """Returns 2x."""
        return 2 * x


class Child(Base):
    @bundle(trainable=True)
    def quadruple(self, x):
        """Returns 4x."""
        return self.double(self.double(x))


@bundle(trainable=True)
def functions():
    """A table of functions."""
    return {"sin": math.sin, "sqrt": math.sqrt}


@pytest.mark.parametrize("mode", MODES)
def test_a_bundled_method_of_a_plain_base_class_and_returned_functions(mode):
    with graph_context(), sandbox_mode(mode):
        assert Child().quadruple(3).data == 12
        assert functions().data == {"sin": math.sin, "sqrt": math.sqrt}
