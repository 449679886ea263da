"""A dataset is checked against the task before training (issue 13, defect 9)."""
from __future__ import annotations

import importlib.util
import sys

import pytest

from dualformer.planning import PlanningTask
from harness.api import ConfigError
from support import ROOT


@pytest.fixture(scope="module")
def maze7(tmp_path_factory):
    gen_data = sys.modules.get("gen_data")  # one module object per process: its workers pickle by name
    if gen_data is None:
        spec = importlib.util.spec_from_file_location("gen_data", ROOT / "scripts" / "gen_data.py")
        gen_data = importlib.util.module_from_spec(spec)
        sys.modules["gen_data"] = gen_data
        spec.loader.exec_module(gen_data)
    out = tmp_path_factory.mktemp("maze7")
    gen_data.main(["maze", "--size", "7", "--train", "20", "--test", "5", "--no-progress", "--out", str(out),
                   "--workers", "1"])
    return out


@pytest.mark.parametrize("settings, says", [
    ({"size": 10}, "size 7, not 10"),
    ({"family": "sokoban"}, "family maze, not sokoban"),
    ({"size": 7, "n_train": 50}, "20 train examples, not 50"),
])
def test_a_dataset_unlike_the_task_is_refused(maze7, settings, says):
    with pytest.raises(ConfigError, match=says):
        PlanningTask(seed=0, **{"family": "maze", "n_train": 20, "n_test": 5, **settings}, data_dir=str(maze7))


def test_the_matching_dataset_loads(maze7):
    # Every task of this small set (the layout-spread sampling would keep only a few of 20).
    task = PlanningTask(seed=0, family="maze", size=7, n_train=20, n_test=5, data_dir=str(maze7),
                        train_keep_fraction=1.0, test_tasks_per_layout=None)
    assert len(task.train) == 20 and len(task.test_set) == 5
