"""Tables 5.1-5.4 at paper size keep upstream's random batches (its loader shuffles examples, no
length buckets) with torch.compile off; our length-bucketed, compiled variant is a named config,
`table5=paper_bucketed`, recorded as `protocol: harness` and trained under its own
checkpoint_group, so its models and records never pass for the paper protocol's."""
from __future__ import annotations

import pytest

from support import compose_run


def planning_model(cfg):
    from hydra.utils import instantiate

    return instantiate(cfg.model)()


@pytest.mark.parametrize("experiment", ["table5_1_fast", "table5_4_bootstrap"])
def test_the_paper_default_is_random_batches_uncompiled_and_ours_a_labelled_variant(experiment, run_dir):
    base = [f"experiment={experiment}", "task=maze15", "model=dualformer"]
    paper = compose_run("train", base, run_dir)
    ours = compose_run("train", [*base, "table5=paper_bucketed"], run_dir)
    assert (paper.protocol, paper.model.batching) == ("paper", "random")
    assert planning_model(paper)._compile_setting() is False
    assert (ours.protocol, ours.model.batching) == ("harness", "bucketed")
    assert planning_model(ours)._compile_setting() is None, "auto: compiled where CUDA is present"
    assert ours.checkpoint_group != paper.checkpoint_group
    assert ours.model.train.steps == paper.model.train.steps and ours.model.preset == paper.model.preset
