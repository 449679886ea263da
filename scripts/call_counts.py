"""Count the LLM calls one optimizer step makes as the traced graph grows: OptoPrime vs TextGrad.

    python scripts/make_tables.py             # the tables, and results/figures/textgrad_calls.png and .csv
    python scripts/make_tables.py --no-calls  # the tables only

scripts/make_tables.py builds this figure with the tables (it calls `write`); its sizes are
make_tables.CALL_COUNT_SIZES.

A CALL COUNT, NOT AN ACCURACY RESULT. Every request goes over HTTP to an OpenAI-compatible server
on 127.0.0.1 (tests/fake_openai.py) that answers with scripted text; the script counts the requests
that server receives during one `step()` and the characters sent, for two graph shapes:

- chain: one trainable string through k bundled operations to the output;
- batch: the prompt-optimization workflow of Table 2 (system prompt -> student -> check, for B
  questions, joined into one output), B = 1, 2, 4, ...

OptoPrime asks once per step however large the graph (its one prompt grows instead); TextGrad asks
once per edge back to the parameter, once per merge of gradients and once per parameter.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # run from a clone; the loopback server lives in tests/

from baselines.textgrad import OPEN, CLOSE, TextGrad  # noqa: E402
from fake_openai import serving  # noqa: E402
from trace_core import bundle, graph_context, node  # noqa: E402
from trace_core.llm import OpenAIChat  # noqa: E402
from trace_core.optimizers import OptoPrime  # noqa: E402

METHODS: dict[str, Callable[..., Any]] = {"OptoPrime": OptoPrime, "TextGrad": TextGrad}


def scripted_reply(messages: list[dict]) -> str:
    """What the loopback server says: a no-change JSON to OptoPrime, tagged text to a TextGrad
    update, a short sentence to everything else (gradients, merges, the student)."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    if "#Variables" in system:
        return json.dumps({"reasoning": "scripted", "suggestion": {}})
    if OPEN in system:
        return f"{OPEN}unchanged{CLOSE}"
    return "Answer: 3"


@bundle()
def extend(text):
    """Appends a period to the text."""
    return text + "."


def chain(k: int) -> tuple[list, Any, str]:
    """One trainable string through k bundled operations."""
    x = node("start", trainable=True, name="x", constraint="a short string")
    value = x
    for _ in range(k):
        value = extend(value)
    return [x], value, "The output should be longer."


def batch(b: int, llm: Any) -> tuple[list, Any, str]:
    """Table 2's prompt-optimization workflow for one batch of b questions."""
    from tasks.trace_paper.bbh import Example, Splits, score_integer
    from tasks.trace_paper.textgrad_tasks import NUMBER_INSTRUCTION, PromptTask

    questions = tuple(Example(f"How many apples are in {i} + 2 bags of one apple each?", str(i + 2))
                      for i in range(b))
    task = PromptTask("count", Splits(questions, (), ()), score_integer, llm, NUMBER_INSTRUCTION,
                      limit=1, batch_size=b, steps_per_epoch=1)
    feedback = task.evaluate(task.init_params())
    return task.parameters(), feedback.output, feedback.text


def measure(server: Any, method: str, build: Callable[[Any], tuple[list, Any, str]]) -> dict[str, Any]:
    llm = OpenAIChat("loopback-model", base_url=server.url, max_retries=0)
    with graph_context():
        params, output, feedback = build(llm)
        optimizer = METHODS[method](params, llm=llm)
        optimizer.zero_feedback()
        nodes = len(optimizer.backward(output, feedback).nodes)
        before, sent = server.seen, len(server.bodies)
        optimizer.step()
    chars = sum(len(m["content"]) for body in server.bodies[sent:] for m in body["messages"])
    return {"method": method, "subgraph_nodes": nodes, "calls": server.seen - before, "prompt_chars": chars}


def run(max_chain: int, max_batch: int) -> list[dict[str, Any]]:
    rows = []
    with serving(responder=scripted_reply) as server:
        for method in METHODS:
            for k in sorted({1, 2, 4, 8, 16, 32} & set(range(1, max_chain + 1))):
                rows.append({"graph": "chain", "size": k, **measure(server, method, lambda llm, k=k: chain(k))})
            for b in sorted({1, 2, 3, 4, 8} & set(range(1, max_batch + 1))):
                rows.append({"graph": "batch", "size": b, **measure(server, method, lambda llm, b=b: batch(b, llm))})
    return rows


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from harness.figures import plain_log_ticks, pyplot, save

    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for (key, label), ax in zip([("calls", "LLM calls in one step"), ("prompt_chars", "characters sent in one step")],
                                axes):
        for method, marker in zip(METHODS, "os"):
            for graph, style in (("chain", "-"), ("batch", "--")):
                points = sorted((r["subgraph_nodes"], r[key]) for r in rows
                                if r["method"] == method and r["graph"] == graph)
                if points:
                    ax.plot(*zip(*points), style, marker=marker, label=f"{method}, {graph}")
        ax.set(xlabel="nodes in the traced subgraph", ylabel=label, xscale="log", yscale="log",
               xticks=[2, 4, 8, 16, 32])
        ax.xaxis.set_major_formatter(ScalarFormatter())  # plain numbers on log axes
        ax.xaxis.set_minor_formatter(NullFormatter())
        if key == "calls":
            ax.set_yticks([1, 2, 4, 8, 16, 32])
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            plain_log_ticks(ax)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle("Call counts per optimizer step vs graph size (not an accuracy result; "
                 "loopback server, scripted replies)", fontsize="medium")
    save(fig, path)


def write(out: Path, max_chain: int = 32, max_batch: int = 8) -> list[Path]:
    """Measure, then write `<out>/textgrad_calls.csv` and `.png`; returns both paths."""
    rows = run(max_chain, max_batch)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "textgrad_calls.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "textgrad_calls.png")
    return [out / "textgrad_calls.csv", out / "textgrad_calls.png"]
