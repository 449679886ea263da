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
    # One W&B group per method of an experiment: the default workspace draws one curve per method
    # (the mean over seeds), with no manual "group by".
    assert wb.job_type == "optimize" and wb.group == "adhoc/optoprime"
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
    assert wb.run_id == record.config_hash, "the W&B id is the run's identity"


def test_a_rerun_of_the_same_config_continues_its_wandb_run(tmp_path):
    """A killed job's rerun (here: the same config again) resumes the same W&B run instead of leaving
    an empty run and starting a second one under the same name."""
    first = run(compose_run("optimize", BASE, tmp_path / "a"))
    second = run(compose_run("optimize", [*BASE, "skip_done=false"], tmp_path / "b"))
    [a], [b] = offline_runs(tmp_path / "a"), offline_runs(tmp_path / "b")
    assert a.run_id == b.run_id == first.config_hash == second.config_hash


def test_a_training_run_is_a_train_job_with_its_record_attached(tmp_path):
    record = run_train(compose_run("train", [f"hydra.searchpath=[file://{DATA / 'configs'}]", "task=parity",
                                             "model=last_bit", "logger=wandb", "progress=false"], tmp_path))
    [wb] = offline_runs(tmp_path)
    assert wb.job_type == "train" and wb.config["run"]["method"] == "last_bit"
    assert ("run_record", f"run_record-{record.config_hash}") in wb.artifacts
