"""Bundled code keeps Trace's contract: closures and decorators survive a rewrite, a trainable node
read without being passed in is caught, async functions are awaited, and a failure shows its line."""
from __future__ import annotations

import asyncio
import functools

import pytest

from trace_core import ExecutionError, MissingInputsError, backward, bundle, graph_context, node
from trace_core.code import failing_line, format_failure


def add_one_to_result(fn):
    """A decorator that must keep applying after the function is rewritten."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs) + 1
    return wrapper


@bundle(trainable=True)
@add_one_to_result
def decorated(x):
    """Doubles x."""
    return 2 * x


def make_shifter(offset):
    @bundle(trainable=True)
    def shift(x):
        """Shifts x."""
        return x + offset
    return shift


def test_closure_survives_an_accepted_rewrite():
    shift = make_shifter(10)
    with graph_context():
        assert shift(node(1)).data == 11
        shift.parameter._data = "def shift(x):\n    \"\"\"Shifts x.\"\"\"\n    return x - offset\n"
        assert shift(node(1)).data == -9, "the rewritten code still sees `offset`"


def test_closure_cells_stay_live_after_a_rewrite():
    def counter():
        count = 0

        @bundle(trainable=True)
        def tick(step):
            nonlocal count
            count += step
            return count

        return tick, lambda: count

    tick, read = counter()
    with graph_context():
        tick(node(1))
        tick.parameter._data = "def tick(step):\n    nonlocal count\n    count += 2 * step\n    return count\n"
        assert tick(node(1)).data == 3 and read() == 3, "the rewrite writes the same cell"


def test_decorators_below_bundle_are_kept_in_the_code_and_keep_applying():
    original = decorated.parameter.data
    try:
        assert original.startswith("@add_one_to_result\ndef decorated(x):")
        assert "@bundle" not in original
        assert decorated.parameter.constraint.startswith("The code should start with:\n@add_one_to_result\n")
        with graph_context():
            assert decorated(node(3)).data == 7
            decorated.parameter._data = "@add_one_to_result\ndef decorated(x):\n    return 3 * x\n"
            assert decorated(node(3)).data == 10, "the decorator still applies after a rewrite"
    finally:
        decorated.parameter._data = original


def test_a_trainable_node_read_inside_is_detected():
    with graph_context():
        hidden = node(5, trainable=True, name="hidden")

        @bundle()
        def uses_hidden(x):
            return x + hidden

        with pytest.raises(MissingInputsError, match="hidden0"):
            uses_hidden(node(1))

        @bundle(allow_external_dependencies=True)
        def allowed(x):
            return x + hidden

        assert allowed(node(1)).data == 6

        @bundle()
        def passed_in(x, h):
            return x + h

        out = passed_in(node(1), hidden)
        assert out.data == 6 and backward(out, "f").parameters == [hidden]


def test_a_node_derived_from_a_parameter_read_inside_is_detected_and_constants_are_not():
    with graph_context():
        scaled = node(2, trainable=True, name="w") * 3
        label = node("plain constant")

        @bundle()
        def reads_derived(x):
            return x + scaled.data

        @bundle()
        def reads_constant(x):
            return f"{label.data}: {x}"

        with pytest.raises(MissingInputsError, match="multiply0"):
            reads_derived(node(1))
        assert reads_constant(node(1)).data == "plain constant: 1"


SHARED = {}  # a module global that rewritten code can reach


def test_rewritten_code_reading_a_node_becomes_feedback():
    with graph_context():
        SHARED["weight"] = node(5, trainable=True, name="hidden")

        @bundle(trainable=True, sandbox="none")  # in a sandbox worker this process's globals are out of reach
        def act(x):
            return x

        act.parameter._data = "def act(x):\n    return x + SHARED['weight'].data\n"
        with pytest.raises(ExecutionError) as caught:
            act(node(1))
        assert "hidden0" in caught.value.exception_node.data
        assert act.parameter in caught.value.exception_node.parents


@bundle()
async def slow_echo(text):
    """Returns the text after a pause."""
    await asyncio.sleep(0.01)
    return text + "!"


@bundle()
async def async_fails(x):
    await asyncio.sleep(0)
    raise ValueError("bad input")


def test_async_bundles_are_awaited_and_recorded():
    async def main():
        with graph_context():
            a = node("a", name="a")
            results = await asyncio.gather(slow_echo(a), slow_echo(a), slow_echo(node("b")))
            assert [r.data for r in results] == ["a!", "a!", "b!"]
            assert results[0].parents == (a,) and results[0].op.name == "slow_echo"
            with pytest.raises(ExecutionError) as caught:
                await async_fails(a)
            failed = caught.value.exception_node
            assert "(ValueError) bad input" in failed.data and failed.parents == (a,)
            assert "raise ValueError" in failed.data, "the failing line is shown"

    asyncio.run(main())


def test_async_trainable_code_can_be_rewritten():
    @bundle(trainable=True)
    async def respond(x):
        return x

    async def main():
        with graph_context():
            assert (await respond(node(2))).data == 2
            respond.parameter._data = "async def respond(x):\n    return x * 5\n"
            assert (await respond(node(2))).data == 10

    asyncio.run(main())


def failing_original(values):
    total = 0
    for v in values:
        total += 10 / v
    return total


def test_failing_line_is_marked_in_the_original_source():
    bundled = bundle()(failing_original)
    with graph_context(), pytest.raises(ExecutionError) as caught:
        bundled(node([1, 0]))
    text = caught.value.exception_node.data
    assert text.startswith("(ZeroDivisionError) division by zero")
    marked = [line for line in text.splitlines() if line.startswith(">>")]
    assert len(marked) == 1 and "total += 10 / v" in marked[0]
    assert "def failing_original(values):" in text, "the whole function is shown"


def test_failing_line_is_marked_in_rewritten_code_and_inside_a_helper_call():
    @bundle(trainable=True)
    def plan(x):
        return x

    with graph_context():
        plan.parameter._data = "def plan(x):\n    y = x + 1\n    return int(str(y) + 'z')\n"
        with pytest.raises(ExecutionError) as caught:
            plan(node(1))
    text = caught.value.exception_node.data
    assert text.startswith("(ValueError) invalid literal")
    marked = [line for line in text.splitlines() if line.startswith(">>")]
    assert marked == [">> 3 |     return int(str(y) + 'z')"]


def test_failure_formatting_takes_plain_data():
    source = "def f(a):\n    b = a\n    return b[3]\n"
    text = format_failure(source, 3, "IndexError", "list index out of range", name="f")
    assert text.splitlines()[0] == "(IndexError) list index out of range"
    assert ">> 3 |     return b[3]" in text and "   2 |     b = a" in text
    assert format_failure(source, None, "IndexError", "x", name="f") == "(IndexError) x"


def test_failing_line_finds_the_deepest_frame_of_the_given_code():
    def helper():
        raise KeyError("k")

    def outer():
        helper()

    try:
        outer()
    except KeyError as exc:
        code = outer.__code__
        line = failing_line(exc, code.co_filename, code.co_firstlineno, code.co_firstlineno + 1)
        assert line == 2, "line 2 of outer's source (the call that raised)"


def test_nested_bundles_record_a_trainable_inner_call_as_an_input_of_the_outer_one():
    @bundle()
    def inner(v):
        return v * 2

    @bundle(trainable=True)
    def trainable_inner(v):
        return v + 1

    @bundle()
    def outer(x):
        return inner(x) + 1

    @bundle()
    def hides_code(x):
        return trainable_inner(x).data

    with graph_context():
        x = node(3, trainable=True, name="x")
        assert outer(x).data == 7 and backward(outer(x), "f").parameters == [x]
        # The inner code is a dependency the graph can record exactly (issue 28): an input, not an error.
        result = hides_code(x)
        assert trainable_inner.parameter in result.parents
        assert set(backward(result, "f").parameters) == {x, trainable_inner.parameter}
