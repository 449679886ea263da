"""`harness.train` drives any Model through fit / test / record.

The Searchformer / Dualformer models arrive later; this test pins the loop's contract with a
small real learner (tests/toys.py) composed through test-only config groups (tests/data/configs).
"""
from __future__ import annotations

from harness.api import Model
from harness.train import run
from support import DATA, compose_run
from toys import LastBitModel


def test_train_loop_fits_tests_and_records(run_dir):
    overrides = [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=parity", "model=last_bit",
                 "logger=none", "progress=false"]
    cfg = compose_run("train", overrides, run_dir)
    assert isinstance(LastBitModel(), Model)
    record = run(cfg)
    assert record.metrics == {"test/acc": 1.0}
    assert record.method == "last_bit" and record.task == "parity"
    assert [p["step"] for p in record.curve] == [0, 1] and record.curve[-1]["train/acc"] == 1.0
    assert (run_dir / f"parity__last_bit__seed42__{record.config_hash}.json").exists()
    assert (run_dir / "progress.jsonl").read_text().count("\n") == 2


def test_train_without_a_model_is_one_clear_error(run_dir):
    import pytest
    from hydra.errors import HydraException

    from harness.runs import user_error_message

    with pytest.raises(HydraException) as caught:
        compose_run("train", ["task=traffic"], run_dir)
    assert "model" in user_error_message(caught.value)
