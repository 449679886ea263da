"""Search-dynamics bootstrapping: which response a round keeps, the fallback, rounds and resume."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from dualformer.bootstrap import BootstrapModel  # noqa: E402
from dualformer.data import TraceDropout, tokenize  # noqa: E402
from dualformer.planning import PlanningTask  # noqa: E402
from harness.api import ConfigError  # noqa: E402

SMALL = dict(samples=3, n_prompts=4, prompt_batch=2, steps=3, lr=1e-3, warmup=1, batch_size=2)


class Journal:
    def __init__(self) -> None:
        self.points = []

    def log(self, metrics, step):
        self.points.append((step, dict(metrics)))


def _model(tmp_path, rounds: int, **bootstrap) -> BootstrapModel:
    return BootstrapModel(dropout=TraceDropout(p=[1, 0, 0, 0, 0]), preset="tiny", samples=2, max_len=40,
                          seed=1, rounds=rounds, bootstrap={**SMALL, **bootstrap},
                          train=dict(steps=4, batch_size=2, warmup=1, lr=1e-3, log_every=1,
                                     checkpoint_dir=str(tmp_path / "searchformer")))


def _ready(tmp_path) -> tuple[BootstrapModel, PlanningTask]:
    task = PlanningTask(seed=5, size=6, n_train=6, n_test=2)
    model = _model(tmp_path, rounds=0)
    model.task, model.pad = task, len(task.vocab)
    return model, task


def test_keeps_the_correct_optimal_response_with_the_shortest_trace(tmp_path):
    model, task = _ready(tmp_path)
    example = task.train[0]
    seq = tokenize(example)
    full = task.vocab.encode(seq.decoder_tokens()[1:-1])                 # A* trace, then the plan
    plan_only = task.vocab.encode(seq.decoder_tokens(trace=[])[1:-1])     # no trace at all
    short = task.vocab.encode(seq.decoder_tokens(trace=seq.trace[:2])[1:-1])
    wrong = plan_only[:-3]                                               # stops before the goal
    best = model._shortest_optimal(example, [full, wrong, short, plan_only], [True] * 4)
    assert best == (0, plan_only)
    # the shortest one did not reach eos (cut by the length guard): the next shortest wins
    assert model._shortest_optimal(example, [full, short, plan_only], [True, True, False]) == (
        sum(map(len, seq.trace[:2])), short)
    assert model._shortest_optimal(example, [wrong, wrong], [True, True]) is None


def test_a_prompt_without_an_optimal_response_keeps_the_a_star_sequence(tmp_path):
    import torch

    from dualformer.model import Transformer, preset

    model, task = _ready(tmp_path)
    torch.manual_seed(0)
    model.model = Transformer(preset("tiny", len(task.vocab) + 1))   # untrained: never optimal
    from dualformer.bootstrap import BootstrapSettings

    kept, stats = model.collect(BootstrapSettings(**SMALL), round_=1)
    assert len(kept) == SMALL["n_prompts"] and stats["improved_fraction"] == 0
    for (prompt, decoder), example in zip(kept, task.train):
        assert prompt == task.vocab.encode(tokenize(example).encoder_tokens())
        assert decoder == task.vocab.encode(tokenize(example).decoder_tokens())
    assert stats["trace_tokens_kept"] == stats["trace_tokens_astar"]


def test_rounds_checkpoint_their_data_and_resume_without_sampling_again(tmp_path, monkeypatch):
    task = PlanningTask(seed=5, size=6, n_train=6, n_test=2)
    journal = Journal()
    _model(tmp_path, rounds=2).fit(task, journal)
    for round_ in (1, 2):
        folder = tmp_path / "searchformer" / f"bootstrap{round_}"
        assert (folder / "checkpoint.pt").exists()
        assert len(json.loads((folder / "sequences.json").read_text())) == SMALL["n_prompts"]
    steps = [step for step, metrics in journal.points if "train/loss" in metrics]
    assert steps == sorted(steps) and max(steps) == 4 + 2 * SMALL["steps"], "one rising step axis"
    assert any("bootstrap/improved_fraction" in m for _, m in journal.points)

    # A later run with one more round reuses rounds 1-2 (no sampling) and only adds round 3.
    calls = []
    real_collect = BootstrapModel.collect
    monkeypatch.setattr(BootstrapModel, "collect", lambda self, s, r: calls.append(r) or real_collect(self, s, r))
    later = Journal()
    _model(tmp_path, rounds=3).fit(task, later)
    assert calls == [3]
    # ... and its record still says what every round's sampling found (kept beside its sequences)
    found = [step for step, metrics in later.points if "bootstrap/improved_fraction" in metrics]
    assert found == [4, 4 + SMALL["steps"], 4 + 2 * SMALL["steps"]], later.points


def test_bad_bootstrap_settings_are_a_config_error(tmp_path):
    task = PlanningTask(seed=5, size=6, n_train=6, n_test=2)
    with pytest.raises(ConfigError, match="model.rounds"):
        _model(tmp_path, rounds=-1).fit(task, None)
    with pytest.raises(ConfigError, match="model.bootstrap"):
        _model(tmp_path, rounds=1, sample_count=3).fit(task, None)


@pytest.mark.parametrize("reload", [False, True])
def test_upstream_rounds_reload_the_optimizer_state_ours_start_fresh(tmp_path, monkeypatch, reload):
    from dualformer.train import Trainer

    seen = []
    real_run = Trainer.run
    def spy(self, *args, **kwargs):
        states = self.optimizer.state.values()
        seen.append(int(next(iter(states))["step"]) if states else 0)
        return real_run(self, *args, **kwargs)
    monkeypatch.setattr(Trainer, "run", spy)
    task = PlanningTask(seed=5, size=6, n_train=6, n_test=2)
    _model(tmp_path, rounds=1, reload_optimizer=reload).fit(task, None)
    assert seen == [0, 4 if reload else 0], "round 1 starts from round 0's 4 Adam steps, or fresh"


def test_upstream_bootstrap_switch_sets_warmup_reload_and_one_sequence_per_process(monkeypatch):
    from dualformer.bootstrap import BootstrapSettings

    monkeypatch.setenv("WORLD_SIZE", "8")
    upstream = BootstrapSettings(upstream=True).resolved()
    assert (upstream.warmup, upstream.reload_optimizer, upstream.batch_size) == (2000, True, 8)
    ours = BootstrapSettings().resolved()
    assert (ours.warmup, ours.reload_optimizer, ours.batch_size) == (100, False, 16)
