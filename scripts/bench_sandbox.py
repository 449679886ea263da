"""Per-call cost of running trainable code in a sandbox worker, against running it in-process.

    python scripts/bench_sandbox.py [--calls 2000]
    python scripts/bench.py sandbox [--n 2000]

Measured on a Meta-World-sized call (an observation dict of a few short lists in, four numbers
out), best of `repeats` passes, all in one run: the plain function, the trainable bundle with
`sandbox="none"` (traced, in-process) and with `sandbox="process"` (traced, in a worker), and
the executor alone. Target: at most 1 ms per sandboxed call.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trace_core import bundle, graph_context  # noqa: E402
from trace_core.code import function_source  # noqa: E402
from trace_core.sandbox import FunctionSpec, SandboxExecutor, default_executor  # noqa: E402

OBSERVATION = {"hand_pos": [0.0, 0.6, 0.2], "puck_pos": [0.1, 0.7, 0.02], "goal_pos": [0.1, 0.8, 0.02],
               "gripper_distance_apart": [1.0], "puck_rot": [0.0, 0.0, 0.0, 1.0]}


def controller(obs):
    """Moves the hand toward the puck."""
    h, p = obs["hand_pos"], obs["puck_pos"]
    return [p[0] - h[0], p[1] - h[1], p[2] - h[2], 0.0]


def _per_call_s(call: Callable[[], Any], calls: int, repeats: int) -> float:
    call()  # warm-up: a worker starts, code compiles
    best = float("inf")
    for _ in range(max(1, repeats)):
        began = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - began) / calls)
    return best


def bench_sandbox(calls: int = 2000, repeats: int = 3) -> dict[str, float]:
    started = time.perf_counter()
    executor = SandboxExecutor(max_workers=1)
    spec = FunctionSpec.of(controller, function_source(controller))
    executor.call(spec, (OBSERVATION,), {}, 60)
    start_s = time.perf_counter() - started
    with graph_context():
        traced = {mode: bundle(trainable=True, sandbox=mode)(controller) for mode in ("none", "process")}
        figures = {"plain_us": _per_call_s(lambda: controller(OBSERVATION), calls, repeats),
                   "bundle_none_us": _per_call_s(lambda: traced["none"](OBSERVATION), calls, repeats),
                   "executor_us": _per_call_s(lambda: executor.call(spec, (OBSERVATION,), {}, 60), calls, repeats),
                   "bundle_process_us": _per_call_s(lambda: traced["process"](OBSERVATION), calls, repeats)}
    executor.close()
    default_executor().close()
    result = {k: v * 1e6 for k, v in figures.items()}
    result.update(worker_start_s=start_s, calls=float(calls),
                  sandbox_vs_plain=result["bundle_process_us"] / result["plain_us"],
                  sandbox_vs_bundle_none=result["bundle_process_us"] / result["bundle_none_us"],
                  meets_target_1ms=result["bundle_process_us"] <= 1000)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the fastest counts")
    args = parser.parse_args(argv)
    for key, value in bench_sandbox(args.calls, args.repeats).items():
        print(f"{key:<22}  {value:.4g}" if isinstance(value, float) else f"{key:<22}  {value}")


if __name__ == "__main__":
    main()
