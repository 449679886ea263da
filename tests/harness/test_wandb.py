"""What a run leaves in W&B (read back from its offline files): which run it is, per-step
parameters and LLM numbers, the prompts and replies, the record as an artifact (issue 18)."""
from __future__ import annotations

from harness.optimize import run
from harness.train import run as run_train
from support import DATA, compose_run
from wandb_files import offline_runs

BASE = [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=traced_line", "optimizer=optoprime",
        "llm=scripted", "logger=wandb", "progress=false", "task.limit=4"]


def test_a_run_tells_wandb_who_it_is_and_what_it_tried(tmp_path):
    record = run(compose_run("optimize", BASE, tmp_path))
    [wb] = offline_runs(tmp_path)
    identity = wb.config["run"]
    assert identity == {"experiment": "adhoc", "method": "optoprime", "task": "traced_line", "mode": "paper",
                        "seed": 42, "config_hash": record.config_hash}
    assert wb.job_type == "optimize" and wb.group == "adhoc"
    assert {"optoprime", "traced_line", "adhoc", "paper"} <= set(wb.tags)
    assert wb.metrics["train/best"] == "min", "the summary keeps the best score (lower is better here)"
    steps = [h for h in wb.history if "train/score" in h]
    assert len(steps) == 4 and all("params/x0" in h and "time/method_seconds" in h for h in steps)
    assert all("train/llm/prompt_tokens" in h for h in steps)
    kinds = {kind for kind, _ in wb.artifacts}
    assert "run_record" in kinds, "the record (and per-example outputs) as an artifact"
    assert "run_table" in kinds, "the prompts and replies as a wandb.Table"
    assert wb.summary["test/x"] == record.metrics["test/x"]
    assert record.provenance["wandb_run_id"] == wb.run_id, "the record names its W&B run"


def test_a_training_run_is_a_train_job_with_its_record_attached(tmp_path):
    record = run_train(compose_run("train", [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=parity",
                                             "model=last_bit", "logger=wandb", "progress=false"], tmp_path))
    [wb] = offline_runs(tmp_path)
    assert wb.job_type == "train" and wb.config["run"]["method"] == "last_bit"
    assert ("run_record", f"run_record-{record.config_hash}") in wb.artifacts
