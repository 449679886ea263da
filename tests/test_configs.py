"""Every YAML in every group composes and instantiates in smoke mode."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from harness.api import BoxTask, ConfigError, Optimizer, Task
from support import CONFIGS, compose_run, config_names

GROUPS = sorted(p.name for p in CONFIGS.iterdir() if p.is_dir())


def test_the_design_groups_exist():
    assert {"task", "optimizer", "model", "llm", "logger", "mode", "experiment"} <= set(GROUPS)


@pytest.mark.parametrize("name", config_names("task"))
def test_task_configs_instantiate(name, run_dir):
    # A planning task is run by harness.train, whose smoke mode shrinks it (configs/mode/): under
    # the optimize root it generated its paper-sized set (2,000 Sokoban levels took 30 s).
    planning = name in planning_variants() | {"maze_planning"}
    root, model = ("train", ["model=dualformer"]) if planning else ("optimize", [])
    cfg = compose_run(root, [f"task={name}", "mode=smoke", *model], run_dir)
    task = instantiate(cfg.task)
    assert task.limit == 3  # smoke mode shrinks every task's budget
    if not hasattr(task, "evaluate"):  # a task for harness.train: a model's solve() is tested on it
        assert callable(task.test)
        return
    assert isinstance(task, Task)
    params = task.init_params()
    assert isinstance(params, dict) and params


def planning_variants() -> set[str]:
    """Task configs that are maze_planning with another size or family (maze7 ... sokoban)."""
    return {name for name in config_names("task")
            if "maze_planning" in (OmegaConf.load(CONFIGS / "task" / f"{name}.yaml").get("defaults") or [])}


@pytest.mark.parametrize("name", config_names("optimizer"))
def test_optimizer_configs_instantiate_against_every_task(name, run_dir):
    """Each optimizer builds against every task it fits, and refuses the others in one clear line."""
    fits = []
    for task_name in config_names("task"):
        if task_name in planning_variants():
            continue  # maze_planning stands for them: same type, only the size differs
        overrides = [f"task={task_name}", f"optimizer={name}", "llm=scripted", "mode=smoke"]
        if task_name == "maze_planning":  # only refused here: one maze, not a generated set per optimizer
            overrides += ["task.n_train=1", "task.n_test=1"]
        cfg = compose_run("optimize", overrides, run_dir)
        task = instantiate(cfg.task)
        try:
            optimizer = instantiate(cfg.optimizer)(task=task)
        except ConfigError as refused:
            assert "\n" not in str(refused) and type(task).__name__ in str(refused)
            continue
        fits.append(task_name)
        assert isinstance(optimizer, Optimizer)
        assert optimizer.finished is False
        params = optimizer.ask()
        if isinstance(task, BoxTask) and not hasattr(optimizer, "llm_usage"):
            assert set(params) == set(task.space)
            assert all(task.space[k].contains(v) for k, v in params.items())
    assert fits, f"optimizer={name} fits none of the task configs"


@pytest.mark.parametrize("name", config_names("logger"))
def test_logger_configs_instantiate_and_log(name, run_dir):
    cfg = compose_run("optimize", [f"logger={name}", "mode=smoke"], run_dir)
    logger = instantiate(cfg.logger)(name="probe", directory=run_dir, config={"seed": 1}, group="tests")
    logger.log({"train/score": 1.0}, step=0)
    logger.summary({"test/score": 1.0})
    logger.finish()
    if name == "wandb":  # offline mode leaves a run folder to sync later, without any login
        assert list((run_dir / "wandb").glob("offline-run-*"))


@pytest.mark.parametrize("name", config_names("llm") + config_names("mode"))
def test_llm_and_mode_configs_compose(name, run_dir):
    group = "llm" if name in config_names("llm") else "mode"
    cfg = compose_run("optimize", [f"{group}={name}"], run_dir)
    assert cfg.hydra.runtime.choices[group] == name
    if group == "mode":
        assert cfg.mode == name


def runner_of(experiment: str) -> str:
    return OmegaConf.load(CONFIGS / "experiment" / f"{experiment}.yaml").get("runner", "optimize")


def test_smoke_mode_never_writes_to_results(run_dir):
    for experiment in config_names("experiment"):
        root = runner_of(experiment)
        cfg = compose_run(root, [f"experiment={experiment}", "mode=smoke"], run_dir)
        assert cfg.results_dir is None
        paper = compose_run(root, [f"experiment={experiment}"], run_dir)
        assert str(paper.results_dir).startswith("results/")


def model_target(name: str, folder: Path = CONFIGS / "model") -> str:
    """The `_target_` configs/model/<name>.yaml builds (its own, or through its defaults); "" if none
    (a user's model from the guide's search path lives elsewhere)."""
    from omegaconf import OmegaConf

    if not (folder / f"{name}.yaml").exists():
        return ""
    config = OmegaConf.load(folder / f"{name}.yaml")
    parents = [p for p in config.get("defaults", []) if isinstance(p, str) and p != "_self_"]
    return str(config.get("_target_", "")) or next((t for t in map(model_target, parents) if t), "")


@pytest.mark.parametrize("name", config_names("model"))
def test_model_configs_compose_and_instantiate(name, run_dir):
    target = model_target(name)
    task = "maze_planning" if target.startswith(("dualformer.planning.", "dualformer.bootstrap.")) else "math"
    cfg = compose_run("train", [f"model={name}", "mode=smoke", f"task={task}"], run_dir)
    model = instantiate(cfg.model)()
    assert callable(model.fit) and callable(model.solve)
    # mode=smoke shrinks the project's models through configs/mode/model/smoke_<name>.yaml: a new
    # model config without one trained 3,000 steps in a "smoke" run (dualformer_plan12, issue 29)
    if task == "maze_planning":
        assert cfg.model.train.steps <= 10 and cfg.model.preset == "tiny" and cfg.task.n_train <= 16
    elif target.startswith("dualformer.lm_finetune."):
        assert cfg.model.pretrained == "tiny" and cfg.task.n_train <= 8


@pytest.mark.parametrize("name", config_names("experiment"))
def test_experiments_declare_a_grid_and_a_table(name, run_dir):
    cfg = compose_run(runner_of(name), [f"experiment={name}"], run_dir)
    assert cfg.hydra.sweeper.params, "an experiment file declares its grid"
    table = cfg.table
    assert table.title and table.columns and table.methods
    rows = set(table.methods)
    if table.get("tasks"):  # one row per (task, method): paper values keyed "<task>/<method>"
        rows = {f"{task}/{method}" for task in table.tasks for method in table.methods}
    assert set(table.get("paper") or {}) <= rows


@pytest.mark.parametrize("model, lr, batch", [("solution_only", 5.0e-5, 64), ("dualformer", 7.5e-5, 16)])
def test_paper_sokoban_recipe_is_upstreams_sokoban_sweep(model, lr, batch, run_dir):
    """config/sweep/sokoban-7722-m-{plan-only,trace-plan}-100k.json; batches stated globally."""
    cfg = compose_run("train", ["experiment=table5_1_fast", "task=sokoban", f"model={model}"], run_dir)
    train = cfg.model.train
    assert (cfg.model.preset, train.steps, train.lr, train.batch_size) == ("m-s", 80000, lr, batch)
    maze = compose_run("train", ["experiment=table5_1_fast", "task=maze30", f"model={model}"], run_dir)
    assert (maze.model.preset, maze.model.train.steps, maze.model.train.batch_size) == ("s", 400000, 64)


def test_smoke_sokoban_keeps_the_paper_levels_with_short_traces(run_dir):
    """mode=smoke keeps task=sokoban's 7x7 two-box levels but caps A* traces at 1,000 tokens
    (configs/mode/task/): the paper's 10,000-token cap made one smoke training step ~30 s."""
    base = ["experiment=table5_4_bootstrap", "task=sokoban", "model=searchformer"]
    paper = compose_run("train", base, run_dir).task
    smoke = compose_run("train", base + ["mode=smoke"], run_dir).task
    assert (paper.size, paper.sokoban.n_boxes, paper.sokoban.max_trace_tokens) == (7, 2, 10000)
    assert (smoke.size, smoke.sokoban.n_boxes, smoke.sokoban.max_trace_tokens) == (7, 2, 1000)
    wins = compose_run("train", base + ["mode=smoke", "task.sokoban.max_trace_tokens=3000"], run_dir).task
    assert wins.sokoban.max_trace_tokens == 3000, "the command line still wins"
    mini = compose_run("train", ["experiment=table5_1_fast_mini", "task=sokoban_mini", "mode=smoke"], run_dir).task
    assert mini.sokoban.max_trace_tokens == 1000 and mini.size == 6


@pytest.mark.parametrize("experiment", ["table5_1_fast_mini", "table5_2_slow_mini", "table5_3_auto_mini"])
def test_mini_tables_test_sokoban_on_100_levels_and_mazes_on_200(experiment, run_dir):
    """configs/mode/task/paper_sokoban_mini.yaml cuts the Sokoban rows' test set (a Sokoban response
    is ~3.5x a maze one's tokens); the maze rows keep 200 mazes, and the command line still wins."""
    def task(*overrides):
        return compose_run("train", [f"experiment={experiment}", *overrides], run_dir).task

    assert task("task=maze7").n_test == 200
    assert task("task=sokoban_mini").n_test == 100
    assert task("task=sokoban_mini").test_tasks_per_layout == 1   # still one level per wall layout
    assert task("task=sokoban_mini", "task.n_test=150").n_test == 150
