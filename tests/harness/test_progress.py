"""progress=false reaches the bars that models and tasks open themselves."""
from __future__ import annotations

import io

from harness.progress import bar, shown


def test_bars_follow_the_runs_switch_and_restore_it():
    assert not bar(range(2), file=io.StringIO()).disable
    with shown(False):
        assert bar(range(2), file=io.StringIO()).disable
        with shown(True):
            assert not bar(range(2), file=io.StringIO()).disable
        assert bar(range(2), file=io.StringIO()).disable
    assert not bar(range(2), file=io.StringIO()).disable
    assert bar(range(2), disable=True, file=io.StringIO()).disable, "a caller's own disable still holds"


def test_a_silenced_training_run_prints_no_bar(tmp_path, capsys):
    import pytest

    pytest.importorskip("torch")
    from harness import train
    from support import compose_run

    base = ["experiment=table5_1_fast_mini", "mode=smoke", "logger=none", "model=dualformer"]
    train.run(compose_run("train", base + ["progress=false"], tmp_path / "quiet"))
    assert "train:" not in capsys.readouterr().err
    train.run(compose_run("train", base + ["progress=true"], tmp_path / "loud"))
    assert "train:" in capsys.readouterr().err


def test_bars_are_off_where_jobs_run_side_by_side(tmp_path):
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from harness.progress import bars_wanted
    from support import compose_run

    def wanted(*overrides: str, multirun: bool) -> bool:
        cfg = compose_run("optimize", ["logger=none", *overrides], tmp_path)
        OmegaConf.set_readonly(cfg.hydra, False)
        with open_dict(cfg):
            cfg.hydra.mode = RunMode.MULTIRUN if multirun else RunMode.RUN
        HydraConfig.instance().set_config(cfg)
        return bars_wanted(cfg)

    assert wanted("progress=true", multirun=False) and wanted("progress=true", multirun=True), \
        "one job at a time: bars as asked"
    assert not wanted("hydra/launcher=joblib", "progress=true", multirun=True), "joblib: bars of jobs would interleave"
    assert not wanted("progress=false", multirun=False)


def test_bars_by_default_only_on_a_terminal(tmp_path, monkeypatch):
    # Under nohup or SLURM a bar's carriage-return frames filled a log with 200 kB per 1,000
    # training steps; the plain-text log lines say the same in a few lines.
    import sys

    from harness.progress import bars_wanted
    from support import compose_run

    cfg = compose_run("train", ["task=maze7", "model=solution_only", "logger=none"], tmp_path)
    assert cfg.progress == "auto"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not bars_wanted(cfg), "redirected: no bars"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert bars_wanted(cfg), "a terminal: bars"


def test_a_training_run_writes_a_plain_log_line_every_n_steps(tmp_path, caplog):
    # With bars off (redirected output, SLURM) a training run said nothing for an hour.
    import logging

    import pytest

    pytest.importorskip("torch")
    from harness import train
    from support import compose_run

    cfg = compose_run("train", ["experiment=table5_1_fast_mini", "mode=smoke", "logger=none",
                                "model=dualformer", "progress=false", "log_every=2"], tmp_path)
    with caplog.at_level(logging.INFO, logger="harness.train"), caplog.at_level(logging.INFO, logger="harness.progress"):
        train.run(cfg)
    lines = [r.getMessage() for r in caplog.records if r.name == "harness.train"]
    steps = [line for line in lines if line.startswith("step ")]
    assert steps and all("train/loss=" in line for line in steps), lines
    assert steps[0].startswith(f"step 2/{cfg.model.train.steps}"), steps
    # The test evaluation (an hour of sampling at paper size) says how far it is too.
    said = [r.getMessage() for r in caplog.records if r.name == "harness.progress"]
    n = cfg.task.limit  # smoke mode's test set
    assert f"test: {n}/{n} (100%)" in " ".join(said), said
    order = [r.getMessage() for r in caplog.records if r.name in ("harness.train", "harness.progress")]
    last_step = max(i for i, line in enumerate(order) if line.startswith("step "))
    assert last_step < order.index(f"test: 0/{n} (0%), 00:00 elapsed"), "the last step is said before the test"


def test_the_time_left_counts_every_phase_and_is_never_negative(monkeypatch, caplog, tmp_path):
    """A bootstrapped Searchformer logged `step 3100/3000 ... about -1h59m left`: the total left
    out its rounds' steps, and each round's train/seconds restarts at 0. The estimate is now the
    wall-clock rate since this process began (or since the resumed point) over the steps still to go."""
    import logging

    from harness import train
    from harness.loggers import NullLogger

    now = [1000.0]
    monkeypatch.setattr(train.time, "monotonic", lambda: now[0])
    recorder = train.CurveRecorder(NullLogger(), tmp_path / "a.jsonl", log_every=100, total_steps=400)
    recorder.restore([{"step": s, "train/loss": 1.0} for s in (100, 200)], seconds=50.0)  # resumed at 200
    with caplog.at_level(logging.INFO, logger="harness.train"):
        now[0] += 30.0
        recorder.log({"train/loss": 0.5, "train/seconds": 5.0}, step=300)  # a new phase: its seconds restart
        recorder.finish()
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("step 300"))
    assert line.endswith("; about 0m30s left"), line   # 100 steps in 30 s, 100 to go

    over = train.CurveRecorder(NullLogger(), tmp_path / "b.jsonl", log_every=1, total_steps=10)
    with caplog.at_level(logging.INFO, logger="harness.train"):
        now[0] += 5.0
        over.log({"train/seconds": 1.0}, step=12)
        over.finish()
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("step 12"))
    assert "left" not in line and "-" not in line.split(":")[0], line


def test_a_bootstrapped_searchformer_counts_its_rounds_in_the_total(tmp_path):
    """Table 5.4's step-3 model trains 3,000 steps and then 3 rounds of 300: 3,900 in all."""
    import pytest

    pytest.importorskip("torch")
    from hydra.utils import instantiate

    from support import compose_run

    cfg = compose_run("train", ["experiment=table5_4_bootstrap_mini", "model=searchformer_step3"], tmp_path)
    assert instantiate(cfg.model)().total_steps == 3000 + 3 * 300
    plain = compose_run("train", ["experiment=table5_3_auto_mini", "model=dualformer"], tmp_path)
    assert instantiate(plain.model)().total_steps == 3000


def test_the_sweep_estimate_counts_only_the_jobs_that_ran(monkeypatch):
    """Two jobs skipped in 3 s (their records exist) said `about 0m01s left` for the third, a
    17-minute job; skipped jobs are now said as such and left out of the rate."""
    from harness import sweep

    monkeypatch.setattr(sweep.time, "time", lambda: 1000.0)
    start = {"status": "start", "total": 4, "time": 900.0}
    skipped = {"status": "skipped"}
    line = sweep.progress_line([start, skipped, skipped])
    assert line == "sweep: 2/4 jobs done (2 skipped: records exist), 1m40s elapsed", line
    line = sweep.progress_line([start, skipped, skipped, {"status": "ok"}])
    assert line.endswith("(2 skipped: records exist), 1m40s elapsed, about 1m40s left"), line
    failed = {"status": "failed", "name": "x", "reason": "y", "path": "z"}
    assert "(1 failed, 1 skipped: records exist)" in sweep.progress_line([start, skipped, failed])


def test_hidden_bars_of_long_work_become_log_lines(caplog):
    """Where bars are off (redirected output, SLURM), a bar opened with `log_every_s` still says
    how far it is, as plain log lines at most that often; other bars stay silent."""
    import logging

    with caplog.at_level(logging.INFO, logger="harness.progress"), shown(False):
        with bar(total=3, desc="test", log_every_s=0) as progress:
            for _ in range(3):
                progress.update(1)
        for _ in bar(range(3), desc="quiet"):
            pass
    said = [r.getMessage() for r in caplog.records if r.name == "harness.progress"]
    assert any(line.startswith("test: 3/3 (100%),") and "elapsed" in line for line in said), said
    assert not any("quiet" in line for line in said), said
    with caplog.at_level(logging.INFO, logger="harness.progress"):
        caplog.clear()
        with bar(total=2, desc="shown", log_every_s=0, file=io.StringIO()) as progress:
            progress.update(2)
    assert not caplog.records, "a bar on screen is not logged twice"
