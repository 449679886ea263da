"""The ask / evaluate / tell loop, on a toy problem and through the real configs."""
from __future__ import annotations

import json

from harness.api import Bounds, Feedback
from harness.loggers import NullLogger
from harness.optimize import optimize, run
from harness.records import read_record
from support import compose_run


class Parabola:
    """Toy task: minimise (x - 3)^2 over integers in [0, 10]."""

    higher_is_better = False
    space = {"x": Bounds(0, 10, integer=True)}

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def init_params(self):
        return {"x": 0}

    def evaluate(self, params):
        return Feedback(score=float((params["x"] - 3) ** 2), text="", info={"x2": params["x"] ** 2})

    def test(self, params):
        return {"score": self.evaluate(params).score}


class Walker:
    """Steps x up by one each ask; finished after `stop_after` tells."""

    def __init__(self, stop_after: int) -> None:
        self.x, self.told, self.stop_after, self.finished = 0, [], stop_after, False

    def ask(self):
        return {"x": self.x}

    def tell(self, params, feedback):
        self.told.append((params, feedback.score))
        self.x += 1
        self.finished = len(self.told) >= self.stop_after


class Recorder(NullLogger):
    def __init__(self):
        self.points = []

    def log(self, metrics, step):
        self.points.append((step, dict(metrics)))


def test_loop_tracks_best_logs_every_step_and_journals(tmp_path):
    logger = Recorder()
    trajectory = optimize(Parabola(limit=6), Walker(stop_after=100), logger, tmp_path / "p.jsonl",
                          show_progress=False)
    assert [p["score"] for p in trajectory.curve] == [9, 4, 1, 0, 1, 4]
    assert [p["best"] for p in trajectory.curve] == [9, 4, 1, 0, 0, 0]
    assert trajectory.best_params == {"x": 3} and trajectory.best_score == 0
    assert [s for s, _ in logger.points] == list(range(6))
    logged = logger.points[2][1]
    assert {k: v for k, v in logged.items() if not k.startswith("time/")} == \
        {"train/score": 1.0, "train/best": 1.0, "train/x2": 4, "params/x": 2}, "scores, info and the point tried"
    assert {"time/method_seconds", "time/eval_seconds"} <= set(logged)
    journal = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [j["params"]["x"] for j in journal] == list(range(6))


def test_loop_stops_when_the_optimizer_is_finished(tmp_path):
    walker = Walker(stop_after=2)
    trajectory = optimize(Parabola(limit=50), walker, Recorder(), tmp_path / "p.jsonl", show_progress=False)
    assert len(trajectory.curve) == 2 == len(walker.told)


def test_run_records_the_resolved_config_and_skips_a_finished_run(run_dir):
    overrides = ["optimizer=scats", "logger=none", "progress=false", f"results_dir={run_dir / 'res'}"]
    record = run(compose_run("optimize", overrides, run_dir))
    path = run_dir / "res" / record.filename
    assert path.name.startswith("traffic__scats__seed42__")
    assert read_record(path) == record
    assert record.experiment == "adhoc" and record.method == "scats" and record.mode == "paper"
    assert len(record.curve) == 1  # SCATS is one evaluation, then finished
    assert record.config["optimizer"]["_target_"] == "baselines.scats.ScatsOptimizer"
    assert record.metrics["test/score"] == record.metrics["train/best_score"]
    assert record.cost.seconds > 0

    # A second run with skip_done finds the record and does not recompute it.
    again = run(compose_run("optimize", overrides, run_dir))
    assert again.created == record.created


def test_a_plain_text_line_every_n_evaluations(tmp_path, caplog):
    caplog.set_level("INFO", logger="harness.optimize")
    optimize(Parabola(limit=6), Walker(stop_after=100), NullLogger(), tmp_path / "p.jsonl", show_progress=False,
             desc="toy", log_every=2)
    lines = [r.getMessage() for r in caplog.records if r.name == "harness.optimize"]
    assert len(lines) == 3 and lines[0].startswith("toy: step 2/6 score 4 best 4"), lines
