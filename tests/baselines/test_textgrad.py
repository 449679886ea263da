"""The TextGrad-style optimizer: a call per edge back to the parameters, a merge where gradients
meet, an update per parameter; its updates are checked like OptoPrime's; and in Table 2's runs
against a loopback server its calls grow with the graph while OptoPrime's stay at one per step
(the count per graph size: tests/scripts/test_make_tables.py, which builds textgrad_calls.png)."""
from __future__ import annotations

import json

import pytest

from baselines.textgrad import CLOSE, OPEN, TextGrad
from fake_openai import serving
from harness.optimize import run
from support import compose_run
from trace_core import bundle, graph_context, node
from trace_core.llm import ScriptedLLM


@bundle()
def shout(text):
    """Upper-cases the text."""
    return text.upper()


@bundle()
def pair(a, b):
    """Joins two texts with a space."""
    return f"{a} {b}"


def replies(update: str = "better") -> ScriptedLLM:
    """Test double: gradients and merges get a sentence, updates get `update` in the tags."""
    return ScriptedLLM(responder=lambda m: f"{OPEN}{update}{CLOSE}" if OPEN in m[0]["content"] else "be louder")


def step(optimizer, output, feedback="make it better"):
    optimizer.zero_feedback()
    optimizer.backward(output, feedback)
    return optimizer.step()


@pytest.mark.parametrize("k", [1, 3, 6])
def test_a_chain_costs_one_call_per_edge_plus_one_update(k):
    with graph_context():
        x = node("hi", trainable=True, name="x")
        y = x
        for _ in range(k):
            y = shout(y)
        llm = replies()
        optimizer = TextGrad([x], llm=llm)
        update = step(optimizer, y)
    kinds = [kind for kind, _, _ in optimizer.logs[-1].calls]
    assert kinds == ["gradient"] * k + ["update"] and llm.usage.calls == k + 1
    assert update == {x: "better"} and x.data == "better"
    first = optimizer.logs[-1].calls[0][1][-1]["content"]
    assert "Feedback on the result:\nmake it better" in first and "[shout] Upper-cases the text." in first


def test_gradients_that_meet_are_merged_once_and_constant_inputs_get_none():
    with graph_context():
        x = node("hi", trainable=True, name="x")
        y = pair(shout(x), pair(x, node("!", name="bang")))  # x reaches y twice; "!" reaches no parameter
        optimizer = TextGrad([x], llm=replies())
        step(optimizer, y)
        kinds = [kind for kind, _, _ in optimizer.logs[-1].calls]
        # y -> shout, y -> inner pair; shout -> x, inner pair -> x; merge at x; update x
        assert sorted(kinds) == sorted(["gradient"] * 4 + ["merge", "update"])
        y = pair(shout(x), pair(x, node("!", name="bang")))
        everything = TextGrad([x], llm=replies(), all_edges=True)
        step(everything, y)
        assert len(everything.logs[-1].calls) == 7, "one more gradient: to the constant"


def test_updates_are_converted_and_checked_like_optoprimes():
    with graph_context():
        n = node(3, trainable=True, name="n")
        optimizer = TextGrad([n], llm=replies(update="5"))
        step(optimizer, n * 2)
        assert n.data == 5 and isinstance(n.data, int)
        bad = TextGrad([n], llm=replies(update="five"))
        step(bad, n * 2)
        assert n.data == 5 and "number" in bad.logs[-1].refused["n0"]

        @bundle(trainable=True)
        def double(v):
            """Doubles v."""
            return v * 2

        code = double.parameter
        renamed = TextGrad([code], llm=replies(update="def other(v):\n    return v"))
        step(renamed, double(node(1, name="v")))
        assert "double" in renamed.logs[-1].refused[code.py_name] and "v * 2" in code.data
        untagged = TextGrad([code], llm=ScriptedLLM(replies=["no tags at all"]))
        step(untagged, double(node(1, name="v")))
        assert OPEN in untagged.logs[-1].refused[code.py_name]
    with pytest.raises(ValueError, match="no memory"):
        TextGrad([n], llm=replies(), memory_size=5)


def table2_endpoint(messages: list[dict]) -> str:
    system = messages[0]["content"]
    if "#Variables" in system:  # OptoPrime
        name = "system_prompt0" if "system_prompt0" in messages[-1]["content"] else "response0"
        return json.dumps({"reasoning": "scripted", "suggestion": {name: "Count carefully. Answer: N"}})
    if OPEN in system:  # a TextGrad update
        return f"{OPEN}Count carefully. Answer: N{CLOSE}"
    return "Answer: 3"  # the student, the critic, gradients and merges


# all_edges (TGD): a gradient to every parent: 3 grades + 3x(reply, answer, question) + 3x(prompt, question)
# + 1 merge + 1 update = 20 per prompt step; review -> (question, response) + 1 update = 3 per solution step
@pytest.mark.parametrize("dataset, textgrad_per_step", [("object_counting", 20), ("mmlu_machine_learning", 3)])
def test_table2_runs_count_one_call_per_step_for_optoprime_and_a_graph_of_calls_for_textgrad(
        dataset, textgrad_per_step, tmp_path):
    calls = {}
    with serving(responder=table2_endpoint) as server:
        for method in ("optoprime", "textgrad"):
            cfg = compose_run("optimize", [
                "experiment=table2_textgrad", "mode=smoke", f"optimizer={method}", f"task.dataset={dataset}",
                # no cache: it would answer repeated temperature-0 requests of a run without the server
                "llm=openai", f"llm.base_url={server.url}", "llm.cache_path=null",
                "llm.model=optimizer-model", "task.student.model=student-model", "logger=none",
                "progress=false"], tmp_path / method)
            asked = lambda: sum(b["model"] == "optimizer-model" for b in server.bodies)  # noqa: E731
            before, seen = asked(), server.seen
            record = run(cfg)
            calls[method] = asked() - before
            assert record.cost.llm_calls == server.seen - seen, "the record counts all the server saw (student too)"
            assert len(record.curve) == 3 and f"test/acc_{dataset}" in record.metrics
    # One step's calls per evaluated proposal: none after the last of the 3 evaluations.
    assert calls == {"optoprime": 2, "textgrad": 2 * textgrad_per_step}
