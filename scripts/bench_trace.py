"""trace_core against Microsoft's Trace (`trace-opt`, import `opto`), both timed in one process.

    python scripts/bench.py trace                              # the suite, through bench.py
    python scripts/bench_trace.py --n 10000 --repeats 3 --json bench_trace.json

    from scripts.bench_trace import bench_trace
    figures = bench_trace(n=10_000, repeats=3)                 # {name: float}

Four workloads, the same program written for each library, run interleaved in a random order
(seeded) in every repeat so that machine load hits both alike; each library's graph is freed
(and the garbage collector run) before the next workload is timed; best of `repeats`:

- per traced operation: a chain of `n` additions starting from a trainable node (the median
  over chunks of 500 additions);
- backward over that chain, at `n` and at n/10 nodes: the ratio of the two shows how each grows
  (linear is 10x);
- backward with the report: trace-opt's backward propagates feedback to every node, ours walks
  the subgraph; ours plus building the report the optimizer reads is the like-for-like figure;
- one call of a trainable bundled function (a small controller: a dict of lists in, four numbers
  out): ours in-process (`sandbox="none"`) and in a sandbox worker (the default), trace-opt's
  in-process (it has no sandbox); speedup = theirs / ours, below 1 when ours is slower;
- one full OptoPrime step on a graph of about 50 nodes: backward, building the report and the
  prompt, reading a fixed JSON reply (no model is asked: a stub answers at once) and updating.

Reported as microseconds / seconds per library and as speedups (theirs / ours). trace-opt is
the `reference` extra; without it only our figures are printed.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEP_LINKS = 16  # (y + i) * w per link: 3 nodes each, plus the 2 parameters: 50 nodes
CHUNK = 500  # operations per timed chunk of the chain


def step_graph(node: Callable[..., Any]) -> tuple[Any, Any, Any, str]:
    """The same ~50-node graph in either library (`node` is its node constructor): parameters x and
    w, the output y, and the reply that moves both parameters."""
    x = node(1.0, trainable=True, name="x")
    w = node(0.5, trainable=True, name="w")
    y = x
    for i in range(STEP_LINKS):
        y = (y + i) * w
    return x, w, y, json.dumps({"reasoning": "r", "suggestion": {x.py_name: 2.0, w.py_name: 0.25}})


def timed_step(optimizer: Any, x: Any, w: Any, y: Any) -> dict[str, float]:
    """One full OptoPrime step (report, the call, parsing, the update) on the graph above."""
    start = time.perf_counter()
    optimizer.zero_feedback()
    optimizer.backward(y, "The output should be larger.")
    optimizer.step()
    seconds = time.perf_counter() - start
    assert (x.data, w.data) == (2.0, 0.25), "the reply was parsed and applied"
    return {"step_s": seconds}


def timed_chain(y: Any, n: int) -> tuple[Any, float]:
    """Extend y by n additions; seconds per addition as the median over chunks of CHUNK, so a
    moment of load on a shared machine does not decide the figure."""
    per_chunk = []
    for done in range(0, n, CHUNK):
        size = min(CHUNK, n - done)
        start = time.perf_counter()
        for _ in range(size):
            y = y + 1
        per_chunk.append((time.perf_counter() - start) / size)
    return y, statistics.median(per_chunk)


OBSERVATION = {"hand_pos": [0.0, 0.6, 0.2], "puck_pos": [0.1, 0.7, 0.02], "goal_pos": [0.1, 0.8, 0.02]}


def controller(obs):
    """Moves the hand toward the puck."""
    h, p = obs["hand_pos"], obs["puck_pos"]
    return [p[0] - h[0], p[1] - h[1], p[2] - h[2], 0.0]


def timed_calls(fn: Callable[[Any], Any], calls: int) -> float:
    """Seconds per call of a trainable bundled function (median over chunks of 100), after a warm-up
    call (a sandbox worker starts, the code compiles)."""
    assert list(_value(fn(OBSERVATION))) == controller(OBSERVATION)
    per_chunk = []
    for done in range(0, calls, 100):
        size = min(100, calls - done)
        start = time.perf_counter()
        for _ in range(size):
            fn(OBSERVATION)
        per_chunk.append((time.perf_counter() - start) / size)
    return statistics.median(per_chunk)


def _value(result: Any) -> Any:
    return getattr(result, "data", result)


def plain_python(n: int) -> float:
    y, start = 0, time.perf_counter()
    for _ in range(n):
        y = y + 1
    return (time.perf_counter() - start) / n


def freed(run: Callable[[], dict[str, float]], clear: Callable[[], None]) -> dict[str, float]:
    """Run one library's workload, then drop its graph before anything else is timed."""
    try:
        return run()
    finally:
        clear()
        gc.collect()


class Ours:
    name = "trace_core"

    def __init__(self) -> None:
        import trace_core
        from trace_core.llm import ScriptedLLM
        from trace_core.optimizers import OptoPrime

        self.lib, self.scripted, self.optoprime = trace_core, ScriptedLLM, OptoPrime
        self.context = None

    def clear(self) -> None:
        self.context = None  # the graph_context's nodes go with the last reference to them

    def chain(self, n: int) -> dict[str, float]:
        with self.lib.graph_context():
            x = self.lib.node(0, trainable=True, name="x")
            y, per_op = timed_chain(x, n)
            start = time.perf_counter()
            subgraph = self.lib.backward(y, "feedback")
            seconds = time.perf_counter() - start
            from trace_core.optimizers.report import build_report

            start = time.perf_counter()  # what the optimizer then does with it: the report
            report = build_report([subgraph], "instruction", [x])
            with_report = seconds + time.perf_counter() - start
        assert subgraph.parameters == [x] and len(subgraph.nodes) == 2 * n + 1 and len(report.code) == n
        return {"op_s": per_op, "backward_s": seconds, "backward_report_s": with_report}

    def calls(self, calls: int) -> dict[str, float]:
        from trace_core.sandbox import sandbox_mode

        figures = {}
        for mode in ("none", "process"):
            with self.lib.graph_context(), sandbox_mode(mode):
                fn = self.lib.bundle(trainable=True)(controller)
                figures[f"call_{mode}_s"] = timed_calls(fn, calls)
        return figures

    def step(self) -> dict[str, float]:
        with self.lib.graph_context():
            x, w, y, reply = step_graph(self.lib.node)
            optimizer = self.optoprime([x, w], llm=self.scripted(responder=lambda messages: reply))
            return timed_step(optimizer, x, w, y)


class Theirs:
    name = "trace_opt"

    def __init__(self) -> None:
        # trace-opt imports LiteLLM, which otherwise tries to download a price list first
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from opto import trace
        from opto.optimizers import OptoPrime
        from opto.trace.nodes import GRAPH

        self.trace, self.optoprime, self.graph = trace, OptoPrime, GRAPH

    def clear(self) -> None:
        self.graph.clear()

    def chain(self, n: int) -> dict[str, float]:
        x = self.trace.node(0, trainable=True, name="x")
        y, per_op = timed_chain(x, n)
        start = time.perf_counter()
        y.backward("feedback")
        seconds = time.perf_counter() - start
        assert x.feedback, "the feedback reached the parameter"
        return {"op_s": per_op, "backward_s": seconds, "backward_report_s": seconds}  # its backward builds it

    def calls(self, calls: int) -> dict[str, float]:
        return {"call_s": timed_calls(self.trace.bundle(trainable=True)(controller), calls)}

    def step(self) -> dict[str, float]:
        x, w, y, reply = step_graph(self.trace.node)

        def stub(messages: list, **_: Any) -> Any:  # the shape of an OpenAI chat completion
            return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=reply))])

        return timed_step(self.optoprime([x, w], llm=stub), x, w, y)


def reference() -> Theirs | None:
    try:
        return Theirs()
    except ImportError:
        return None


def bench_trace(n: int = 10_000, repeats: int = 3, calls: int = 1000, seed: int = 0) -> dict[str, Any]:
    libraries = [lib for lib in (Ours(), reference()) if lib is not None]
    small = max(n // 10, 1)
    best: dict[str, float] = {}
    order = random.Random(seed)

    def keep(prefix: str, figures: dict[str, float]) -> None:
        for key, value in figures.items():
            name = f"{prefix}_{key}"
            best[name] = min(best.get(name, float("inf")), value)

    for _ in range(repeats):
        # Interleaved, in a random order each repeat (machine load hits neither side by its place).
        work = [(lib, name, job) for lib in libraries for name, job in
                ((f"{lib.name}_n", lambda lib=lib: lib.chain(n)), (f"{lib.name}_small", lambda lib=lib: lib.chain(small)),
                 (lib.name, lambda lib=lib: lib.step()), (lib.name, lambda lib=lib: lib.calls(calls)))]
        order.shuffle(work)
        for lib, name, job in work:
            keep(name, freed(job, lib.clear))
    result: dict[str, Any] = {"n": n, "n_small": small, "repeats": repeats,
                              "step_graph_nodes": 2 + 3 * STEP_LINKS,
                              "plain_python_op_us": min(plain_python(n) for _ in range(repeats)) * 1e6}
    for lib in libraries:
        tag = lib.name
        result[f"{tag}_op_us"] = best[f"{tag}_n_op_s"] * 1e6
        result[f"{tag}_backward_{n}_s"] = best[f"{tag}_n_backward_s"]
        result[f"{tag}_backward_{small}_s"] = best[f"{tag}_small_backward_s"]
        result[f"{tag}_backward_growth_x{n // small}"] = best[f"{tag}_n_backward_s"] / best[f"{tag}_small_backward_s"]
        result[f"{tag}_optoprime_step_ms"] = best[f"{tag}_step_s"] * 1e3
        result[f"{tag}_backward_with_report_{n}_s"] = best[f"{tag}_n_backward_report_s"]
    result["trace_core_call_in_process_us"] = best["trace_core_call_none_s"] * 1e6
    result["trace_core_call_sandboxed_us"] = best["trace_core_call_process_s"] * 1e6
    result["trace_core_op_vs_plain"] = result["trace_core_op_us"] / result["plain_python_op_us"]
    if len(libraries) == 2:
        result["speedup_op"] = result["trace_opt_op_us"] / result["trace_core_op_us"]
        result[f"speedup_backward_{n}"] = result[f"trace_opt_backward_{n}_s"] / result[f"trace_core_backward_{n}_s"]
        result[f"speedup_backward_{small}"] = (result[f"trace_opt_backward_{small}_s"]
                                               / result[f"trace_core_backward_{small}_s"])
        result["speedup_optoprime_step"] = result["trace_opt_optoprime_step_ms"] / result["trace_core_optoprime_step_ms"]
        # Like for like: trace-opt's backward propagates feedback to every node; ours walks the
        # subgraph and then builds the report the optimizer reads.
        result[f"speedup_backward_with_report_{n}"] = (result[f"trace_opt_backward_with_report_{n}_s"]
                                                       / result[f"trace_core_backward_with_report_{n}_s"])
        result["trace_opt_call_in_process_us"] = best["trace_opt_call_s"] * 1e6
        result["speedup_call_in_process"] = result["trace_opt_call_in_process_us"] / result["trace_core_call_in_process_us"]
        result["speedup_call_sandboxed"] = result["trace_opt_call_in_process_us"] / result["trace_core_call_sandboxed_us"]
    result["meets_op_target_5us"] = result["trace_core_op_us"] <= 5.0
    result[f"meets_backward_target_0.1s_at_{n}"] = result[f"trace_core_backward_{n}_s"] < 0.1
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="chain length")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many interleaved runs")
    parser.add_argument("--calls", type=int, default=1000, help="bundled calls timed per repeat")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = bench_trace(args.n, args.repeats, args.calls)
    for key, value in result.items():
        print(f"{key:<36}  {value:.4g}" if isinstance(value, float) else f"{key:<36}  {value}")
    if "speedup_op" not in result:
        print("(trace-opt is not importable here: install the `reference` extra to compare against it)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
