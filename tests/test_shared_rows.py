"""Tables that take rows from another experiment (`table: rows_from:`) take runs of the very same
config: composing the row's job under either experiment gives one config hash, so the record of one
is the record the other would have written."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from harness.identity import config_hash
from harness.runs import resolved_config
from support import CONFIGS, compose_run, sweep_jobs

SHARING = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml")
                 if (OmegaConf.load(p).get("table") or {}).get("rows_from"))


def test_table_5_4_takes_its_step_0_and_dualformer_rows_from_table_5_3():
    assert {"table5_4_bootstrap", "table5_4_bootstrap_mini"} <= set(SHARING)


@pytest.mark.parametrize("experiment", SHARING)
def test_shared_rows_are_the_same_config_and_not_run_twice(experiment, tmp_path):
    block = OmegaConf.to_container(OmegaConf.load(CONFIGS / "experiment" / f"{experiment}.yaml"))["table"]
    own = sweep_jobs(compose_run("train", [f"experiment={experiment}"], tmp_path))
    task = dict(kv.split("=") for kv in own[0])["task"]
    for other, methods in block["rows_from"].items():
        for method in methods:
            assert method in block["methods"], "a shared row is a row of the table"
            assert all(f"model={method}" not in job for job in own), f"{method} is {other}'s run, not run again"
            common = [f"task={task}", f"model={method}", "seed=43"]
            mine = resolved_config(compose_run("train", [f"experiment={experiment}", *common], tmp_path / "a"))
            theirs = resolved_config(compose_run("train", [f"experiment={other}", *common], tmp_path / "b"))
            assert config_hash(mine) == config_hash(theirs), f"{method}: {experiment} and {other} differ"
