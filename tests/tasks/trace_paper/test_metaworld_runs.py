"""Meta-World through the harness: the Fig. 6 experiments in smoke mode with the scripted test
double, what each variant's prompt contains, and a scripted "model" whose code really learns.

    .venv/bin/python -m pytest tests/tasks/trace_paper/test_metaworld_runs.py -q
"""
from __future__ import annotations

import json
import re
from functools import partial

import pytest

pytest.importorskip("metaworld")  # the `robot` extra

from hydra.utils import instantiate  # noqa: E402

from harness.loggers import NullLogger  # noqa: E402
from harness.optimize import optimize, run  # noqa: E402
from harness.records import read_record  # noqa: E402
from harness.trace_adapter import TraceAdapter  # noqa: E402
from support import compose_run, sweep_jobs  # noqa: E402
from tasks.trace_paper.metaworld import MetaWorldTask  # noqa: E402
from trace_core import graph_context  # noqa: E402
from trace_core.llm import ScriptedLLM  # noqa: E402
from trace_core.optimizers import OptoPrime  # noqa: E402

VARIANTS = ["optoprime_mem10", "trace_nomem", "trace_masked_nomem", "opro"]  # Masked: memoryless, as the paper
FAST = ["logger=none", "progress=false", "task.test_starts=3"]


@pytest.mark.parametrize("experiment", ["fig6_reach", "fig6_pick_place", "fig6_push"])
def test_fig6_experiments_smoke_run_every_variant_through_the_scripted_llm(experiment, tmp_path):
    base = [f"experiment={experiment}", "mode=smoke", *FAST]  # smoke mode picks the scripted double
    paper = compose_run("optimize", [f"experiment={experiment}"], tmp_path)
    assert paper.results_dir == f"results/{experiment}"
    jobs = sweep_jobs(compose_run("optimize", base, tmp_path))
    assert sorted(dict(kv.split("=") for kv in job)["optimizer"] for job in jobs) == sorted(VARIANTS)
    for i, job in enumerate(jobs):
        run_dir = tmp_path / str(i)
        cfg = compose_run("optimize", base + job, run_dir)
        record = read_record(run_dir / run(cfg).filename)
        assert record.experiment == experiment and record.mode == "smoke" and len(record.curve) == 3
        assert record.cost.llm_calls == len(record.curve) - 1, "one LLM call per evaluated proposal"
        assert record.config["llm"]["_target_"] == "trace_core.llm.ScriptedLLM"
        assert all(p["test_success"] == 0.0 and p["train_success"] == 0.0 for p in record.curve)
        assert record.metrics["test/last_success"] == 0.0 and record.metrics["train/best_score"] >= 0


def test_the_paper_grid_is_four_variants_by_ten_seeds(run_dir):
    for experiment, limit in [("fig6_reach", 10), ("fig6_pick_place", 30), ("fig6_push", 30)]:
        cfg = compose_run("optimize", [f"experiment={experiment}"], run_dir)
        jobs = sweep_jobs(cfg)
        assert len(jobs) == 40 and cfg.task.limit == limit and cfg.task.test_starts == 10
        assert set(cfg.table.paper) == set(VARIANTS) == set(cfg.table.methods)
        assert cfg.hydra.runtime.choices.llm == "openai", "paper runs ask a real model"


@pytest.mark.parametrize("variant, sees_steps", [("optoprime_mem10", False), ("trace_nomem", False),
                                                 ("trace_masked", True), ("trace_masked_nomem", True),
                                                 ("opro", True)])
def test_masked_and_opro_get_the_per_step_feedback_appended(variant, sees_steps, run_dir):
    cfg = compose_run("optimize", ["task=metaworld_push", f"optimizer={variant}", "llm=scripted",
                                   "task.test_starts=1"], run_dir)
    with graph_context():
        task = instantiate(cfg.task)
        optimizer = instantiate(cfg.optimizer)(task=task)
        params = optimizer.ask()
        optimizer.tell(params, task.evaluate(params))
        optimizer.ask()  # the step (and its LLM call) is taken when the next proposal is asked for
    prompt = optimizer.llm.requests[-1][-1]["content"]
    assert ("Step 1: " in prompt) == sees_steps
    assert "Task completed: no" in prompt and "Return (sum of the step rewards)" in prompt
    if variant == "trace_masked":  # the graph is hidden, the per-step sentences are not
        assert "step(action=" not in prompt


def reach_teacher(messages):
    """Scripted stand-in for a model: answers every report with a controller that heads for the goal."""
    name = re.findall(r"(__code_controller\d+)", messages[-1]["content"])[0]
    code = ("def controller(obs):\n    h, g = obs['hand_pos'], obs['goal_pos']\n"
            "    return [g[0] - h[0], g[1] - h[1], g[2] - h[2], 0.0]\n")
    return json.dumps({"reasoning": "move toward goal_pos", "suggestion": {name: code}})


def test_a_code_update_from_the_llm_changes_the_held_out_success(tmp_path):
    with graph_context():
        task = MetaWorldTask("reach-v3", seed=5, limit=3, test_starts=4)
        llm = ScriptedLLM(responder=reach_teacher)
        adapter = TraceAdapter(task, llm, partial(OptoPrime, memory_size=10))
        trajectory = optimize(task, adapter, NullLogger(), tmp_path / "progress.jsonl",
                              show_progress=False)
    curve = trajectory.curve
    assert [p["test_success"] for p in curve] == [0.0, 1.0, 1.0]  # measured before each update
    assert [p["train_success"] for p in curve] == [0.0, 1.0, 1.0] and curve[1]["trace/applied"] == 1
    assert task.test(trajectory.best_params) == {"success": 1.0, "return": pytest.approx(
        task.held_out(trajectory.best_params[task.controller.parameter.py_name]).mean_return),
        "last_success": 1.0}
