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
    with caplog.at_level(logging.INFO, logger="harness.train"):
        train.run(cfg)
    lines = [r.getMessage() for r in caplog.records if r.name == "harness.train"]
    steps = [line for line in lines if line.startswith("step ")]
    assert steps and all("train/loss=" in line for line in steps), lines
    assert steps[0].startswith(f"step 2/{cfg.model.train.steps}"), steps
