"""scripts/bench_trace.py runs both libraries' workloads and reports every figure (no timing is
asserted: speed is what the bench reports, as ratios)."""
from __future__ import annotations

import importlib.util

from support import ROOT


def test_bench_trace_reports_ours_and_the_reference_when_installed():
    spec = importlib.util.spec_from_file_location("bench_trace", ROOT / "scripts" / "bench_trace.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    figures = bench.bench_trace(n=200, repeats=1, calls=20)
    for key in ("trace_core_op_us", "trace_core_backward_200_s", "trace_core_backward_20_s",
                "trace_core_backward_growth_x10", "trace_core_optoprime_step_ms",
                "trace_core_backward_with_report_200_s", "trace_core_call_in_process_us",
                "trace_core_call_sandboxed_us"):
        assert figures[key] > 0
    assert figures["step_graph_nodes"] == 50
    if importlib.util.find_spec("opto") is not None:
        for key in ("speedup_op", "speedup_backward_200", "speedup_backward_20", "speedup_optoprime_step",
                    "speedup_backward_with_report_200", "speedup_call_in_process", "speedup_call_sandboxed"):
            assert figures[key] > 0
