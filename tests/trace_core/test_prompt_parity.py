"""OptoPrime's report under the paper protocol, beside trace-opt 0.1.3.8's (the paper's code) for
the same small program, section by section (issue 28). Node names differ by construction (ours
name a code parameter after its function, `__code_speed_for0` where trace-opt writes `__code0`),
so names are compared by the place they first appear; operator documentation is compared by the
operators it documents (the sentences are each library's own)."""
from __future__ import annotations

import re

import pytest

from trace_core import bundle, graph_context, node
from trace_core.llm import ScriptedLLM
from trace_core.optimizers import OptoPrime

SECTIONS = ["Instruction", "Code", "Documentation", "Variables", "Constraints", "Inputs", "Others",
            "Outputs", "Feedback"]
OBJECTIVE = "Arrive within the time budget."
FEEDBACK = "The slack is negative."
NAME = re.compile(r"\b(?:__code\w*?|[A-Za-z_]\w*?)\d+\b")


def speed_for(distance, road):
    """Chooses a speed (m/s) for a trip of the given distance (m) on the given road."""
    return distance / 100 if road.startswith("fast") else distance / 200


def program(make_node, trainable_fn):
    """budget (handed to the optimizer), margin (trainable, not handed), a trainable function."""
    budget = make_node(60, trainable=True, name="budget", constraint="whole seconds between 10 and 120")
    margin = make_node(5, trainable=True, name="margin")
    distance, road = make_node(1500, name="distance"), make_node("fast\nroad", name="road")
    speed = trainable_fn(distance, road)
    slack = budget - distance / speed - margin
    return budget, slack


def ours(protocol: str = "paper") -> str:
    with graph_context():
        trainable = bundle(trainable=True)(speed_for)
        budget, slack = program(node, trainable)
        llm = ScriptedLLM(replies=['{"reasoning": "", "suggestion": {}}'])
        optimizer = OptoPrime([budget, trainable.parameter], llm=llm, objective=OBJECTIVE, protocol=protocol)
        optimizer.backward(slack, FEEDBACK)
        optimizer.step()
    assert llm.request_params[0].get("temperature", "unset") is (None if protocol == "paper" else "unset")
    return llm.requests[0][1]["content"]


def theirs() -> str:
    from baselines.reference import prepare_environment

    prepare_environment()  # litellm, imported by trace-opt, must not fetch a price list
    opto_trace = pytest.importorskip("opto.trace")
    from opto.optimizers import OptoPrime as Reference

    trainable = opto_trace.bundle(trainable=True)(speed_for)
    budget, slack = program(opto_trace.node, trainable)
    optimizer = Reference([budget, trainable.parameter], llm=object(), objective=OBJECTIVE)
    optimizer.zero_feedback()
    optimizer.backward(slack, FEEDBACK)
    return optimizer.construct_prompt(optimizer.summarize())[1]


def sections(prompt: str) -> dict[str, list[str]]:
    """Section name -> its lines (names canonical by first appearance; framing text dropped)."""
    found = re.findall(r"^#(\w+)\n(.*?)(?=^#\w+\n|^=====|\Z)", prompt, flags=re.S | re.M)
    names: dict[str, str] = {}
    canonical = lambda m: names.setdefault(m.group(0), f"N{len(names)}")  # noqa: E731
    return {title: [NAME.sub(canonical, line) for line in body.strip().splitlines()] for title, body in found}


def test_the_paper_protocols_report_matches_trace_opts_section_by_section():
    mine, reference = sections(ours()), sections(theirs())
    assert list(mine) == list(reference) == SECTIONS
    for title in SECTIONS:
        if title == "Documentation":  # each library's own sentences: the same operators, in order
            assert [line.split("]")[0] for line in mine[title] if line.startswith("[")] == \
                   [line.split("]")[0] for line in reference[title] if line.startswith("[")]
        elif title in ("Inputs", "Others"):  # trace-opt lists these in its own traversal order
            assert sorted(mine[title]) == sorted(reference[title]), title
        else:
            assert mine[title] == reference[title], title


def test_the_harness_variant_differs_only_where_it_says():
    paper, harness = ours("paper"), ours("harness")
    assert "(str) road0=fast\nroad" in paper and "(str) road0='fast\\nroad'" in harness
    assert "= eval(distance=distance0, road=road0, __code=__code_speed_for0)" in paper
    assert "= speed_for(distance=distance0, road=road0, __code=__code_speed_for0)" in harness
    assert "(code) __code_speed_for0:def speed_for" in paper and "(code) __code_speed_for0:\ndef speed_for" in harness
    for text in (paper, harness):  # margin is trainable but not handed over: an input, never a variable
        variables = text.split("#Variables")[1].split("#Constraints")[0]
        assert "margin0" not in variables and "(int) margin0=5" in text.split("#Inputs")[1]


def test_the_harness_variant_documents_a_rewritten_function_by_its_current_docstring():
    with graph_context():  # the code parameter is named in this graph, not the ambient one
        trainable = bundle(trainable=True)(speed_for)
        trainable.parameter._data = ('def speed_for(distance, road):\n    """Always walks."""\n'
                                     '    return 1.4\n')
        budget, slack = program(node, trainable)
        llm = ScriptedLLM(replies=['{"reasoning": "", "suggestion": {}}'])
        optimizer = OptoPrime([budget, trainable.parameter], llm=llm, protocol="harness")
        optimizer.backward(slack, FEEDBACK)
        optimizer.step()
    assert "[speed_for] Always walks." in llm.requests[0][1]["content"]
    assert "Chooses a speed" not in llm.requests[0][1]["content"].split("#Documentation")[1].split("#Variables")[0]
