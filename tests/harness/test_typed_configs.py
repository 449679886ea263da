"""Typed configs (issue 13): the training recipe is a registered dataclass, so every field is in the
composed config, overridable without `+`, and a wrong type is refused while composing."""
from __future__ import annotations

from dataclasses import fields

import pytest

from dualformer.train_config import TrainConfig
from harness.runs import user_error_message
from support import compose_run


@pytest.mark.parametrize("model", ["dualformer", "searchformer", "searchformer_step2"])
def test_every_training_field_is_in_the_config_and_overridable(model, run_dir):
    cfg = compose_run("train", ["task=maze7", f"model={model}", "model.train.log_every=1",
                                "model.train.weight_decay=0.1"], run_dir)
    assert {f.name for f in fields(TrainConfig)} <= set(cfg.model.train)
    assert cfg.model.train.log_every == 1 and cfg.model.train.weight_decay == 0.1
    assert cfg.model.train.seed == cfg.seed, "the model's seed, not the dataclass default"


def test_a_wrong_type_is_refused_with_its_key(run_dir):
    with pytest.raises(Exception) as caught:
        compose_run("train", ["task=maze7", "model=dualformer", "model.train.steps=abc"], run_dir)
    message = user_error_message(caught.value)
    assert "model.train.steps=abc" in message and "Integer" in message
