"""API a researcher porting a Trace program expects (issue 28, peer-test port): stop_tracing,
reading attributes and calling methods by name with upstream's graph shape, and the operator
functions (`operators.add(x=.., y=..)`, `cond`, `getitem`, `identity`)."""
from __future__ import annotations

from trace_core import graph_context, node, stop_tracing
from trace_core import operators as ops


class Holder:
    def __init__(self):
        self.held = node(1)
        self.plain = 2

    def add(self, y):
        return y + 1 + self.held


def test_stop_tracing_gives_unlinked_nodes_and_then_records_again():
    with graph_context():
        x, y = node(1), node(2)
        with stop_tracing():
            z = x + y
            w = x.clone()
        assert z == 3 and z.parents == () and z.inputs == {} and x.children == []
        assert w == 1 and w.parents == ()
        assert (x + y).parents == (x, y)


def test_getattr_by_name_records_the_object_and_the_name_only():
    with graph_context():
        obj = node(Holder())
        read = obj.getattr("held")
        assert read == 1 and len(read.parents) == 2 and read.parents[0] is obj
        assert len(obj.held.parents) == 3, "attribute syntax keeps the held node as a third parent"
        assert obj.getattr("plain") == 2


def test_a_method_fetched_by_name_then_called_and_call_by_name():
    with graph_context():
        obj = node(Holder())
        add = obj.getattr("add")
        z = add(node(2))
        assert z == 4 and z.parents[0] is add and len(z.parents) == 2
        for argument in (2, node(2)):
            called = obj.call("add", argument)
            assert called == 4 and obj in called.parents[0].parents and len(called.parents) == 2


def test_operator_functions_take_named_inputs_as_upstream_does():
    with graph_context():
        x, y = node("a"), node("b")
        z = ops.add(x=x, y=y)
        assert z == "ab" and z.inputs == {"x": x, "y": y}
        assert ops.cond(node(False), x, y) == "b"
        chosen = ops.cond(node(True), x, y)
        assert set(chosen.inputs) == {"condition", "x", "y"}
        items, index = node([node(5), node(6)]), node(1)
        picked = ops.getitem(items, index)
        assert picked == 6 and items in picked.parents and index in picked.parents
        same = ops.identity(picked)
        assert same == 6 and same.parents == (picked,)
        assert ops.multiply(node(3), 2) == 6 and ops.neg(node(3)) == -3


def test_a_bundled_call_under_stop_tracing_records_no_inputs():
    from trace_core import bundle

    @bundle()
    def double(x):
        return x * 2

    with graph_context():
        x = node(3)
        with stop_tracing():
            y = double(x)
        assert y == 6 and y.inputs == {} and double(x).inputs == {"x": x}


def test_a_bracketed_name_in_the_description_names_the_operator():
    """Upstream's `bundle("[name] doc")` names the operator, so the report's call and its
    documentation line agree; trainable code keeps its function's name (the code must)."""
    from trace_core import bundle
    from trace_core.optimizers.report import call_line, documentation

    @bundle("[fancy.cond] Picks x when the condition holds, else y.")
    def fancy_cond(condition, x, y):
        return x if condition else y

    @bundle("[other] Doubles x.", trainable=True)
    def double(x):
        return x * 2

    with graph_context():
        out = fancy_cond(node(True), node(1), node(2))
        assert out.name.startswith("fancy.cond:") and " = fancy.cond(" in call_line(out)
        assert documentation(out) == ("fancy.cond", "[fancy.cond] Picks x when the condition holds, else y.")
        assert double.op.name == "double" and double.parameter.name.startswith("__code_double")
