"""The paper's training experiments at their real shapes (issue 26): the paper config of each
experiment (task sizes, sequence lengths, trace caps, schedules, checkpoints, the bootstrap round)
with the model shrunk and a few steps, reading datasets written by scripts/gen_data.py as the paper
configs do (made here once per module, small). Maze15 and Sokoban run under `torchrun --nproc_per_node=2`
(gloo) and must end in one record equal to a 1-process run on the same global batch; the other
experiments run in 1 process at their task's size, table5_6_math (one fine-tuning per process, as
its README command runs) on generated solutions of 1,000-2,000 tokens under its paper max_length.

What is shrunk, and why (everything else is the paper config): the model (`tiny`, 2 layers per
side), steps (2), the global batch (4 maze / 2 Sokoban sequences: Sokoban's average 3,300 decoder
tokens cost ~5 s a step on one core), the datasets (300 / 30 tasks, one start-goal draw per maze
layout so 30 test tasks span 30 layouts) and the sets taken from them (16 / 4 tasks: the paper's
100k of 1M would take hours to generate), samples per prompt (2) and the response cap (300 tokens: an
untrained model never writes eos, so every sample would decode to the paper's 10,000 on a CPU).
"""
from __future__ import annotations

import importlib.util
import sys

import pytest

from ranks_support import assert_same_record, failure, the_record, train
from support import ROOT, compose_run

SHRUNK = ["logger=none", "model.preset=tiny", "task.n_train=16", "task.n_test=4", "task.n_eval=2",
          "model.train.steps=2", "model.train.warmup=1", "model.train.log_every=1", "model.samples=2",
          "model.eval_every=2", "model.eval_samples=2", "model.max_len=300", "model.prompt_batch=2"]
ONE_ROUND = ["bootstrap.n_prompts=4", "bootstrap.samples=2", "bootstrap.prompt_batch=2", "bootstrap.steps=2",
             "bootstrap.warmup=1", "bootstrap.batch_size=2"]


DATASETS = {"maze15": ["maze", "--size", "15"], "maze20": ["maze", "--size", "20"], "maze25": ["maze", "--size", "25"],
            "maze30": ["maze", "--size", "30"], "sokoban": ["sokoban"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """task name -> a scripts/gen_data.py dataset of it (~12 s for all five on one core)."""
    spec = importlib.util.spec_from_file_location("gen_data", ROOT / "scripts" / "gen_data.py")
    gen_data = importlib.util.module_from_spec(spec)
    sys.modules["gen_data"] = gen_data
    spec.loader.exec_module(gen_data)
    folder = tmp_path_factory.mktemp("data")
    for task, args in DATASETS.items():
        gen_data.main([*args, "--train", "300", "--test", "30", "--attempts", "1", "--workers", "1",
                       "--no-progress", "--out", str(folder / task)])
    return {task: str(folder / task) for task in DATASETS}


def test_paper_configs_read_a_dataset_made_once(run_dir):
    cfg = compose_run("train", ["experiment=table5_1_fast", "task=maze30", "model=dualformer"], run_dir)
    assert cfg.task.data_dir == "data/maze30" and cfg.task.n_train == 100000
    cfg = compose_run("train", ["experiment=table5_4_bootstrap", "task=sokoban", "model=searchformer_step1"], run_dir)
    assert cfg.task.data_dir == "data/sokoban7"


def run_both(args: list[str], tmp_path) -> tuple:
    records = []
    for ranks in (2, 1):
        folder = tmp_path / str(ranks)
        result = train([*args, *SHRUNK, f"model.train.checkpoint_dir={folder / 'checkpoints'}"], folder, ranks)
        assert result.returncode == 0, failure(result)
        records.append(the_record(folder))
    return tuple(records)


def test_table5_1_maze15_on_two_ranks_equals_one_process(tmp_path, data):
    two, one = run_both(["experiment=table5_1_fast", "task=maze15", "model=dualformer", f"task.data_dir={data['maze15']}",
                         "model.train.batch_size=4"], tmp_path)
    assert two.config["task"]["size"] == 15 and two.config["model"]["max_len"] == 300
    assert two.provenance["test_examples_per_rank"] == [2, 2]
    assert any("eval/fast/1_optimal_2" in p for p in two.curve)
    assert_same_record(two, one)


def test_table5_4_sokoban_bootstrap_round_on_two_ranks_equals_one_process(tmp_path, data):
    """Round 0 (the Searchformer) trained on 2 ranks, then one bootstrap round: its sampling split
    over the ranks and gathered, its fine-tuning on the kept sequences (Sokoban traces < 10,000)."""
    two, one = run_both(["experiment=table5_4_bootstrap", "task=sokoban", "model=searchformer_step1",
                         f"task.data_dir={data['sokoban']}",
                         "model.train.batch_size=2", *ONE_ROUND], tmp_path)
    assert two.config["task"]["sokoban"]["max_trace_tokens"] == 10000
    found = [p for p in two.curve if "bootstrap/trace_tokens_astar" in p]
    assert len(found) == 1 and found[0]["bootstrap/trace_tokens_astar"] > 1000, "paper-length traces"
    assert max(p["step"] for p in two.curve if "train/loss" in p) == 4, "round 0's 2 steps, the round's 2"
    assert_same_record(two, one)


@pytest.mark.parametrize("args", [
    ["experiment=table5_2_slow", "task=maze30", "model=dualformer"],
    ["experiment=table5_3_auto", "task=maze20", "model=searchformer"],
    ["experiment=table5_1_fast", "task=maze25", "model=solution_only"],
    ["experiment=searchformer_maze10_1gpu", "model=searchformer"],
], ids=lambda args: "-".join(a.split("=")[1] for a in args[:3]))
def test_paper_experiment_trains_at_its_task_size_in_one_process(tmp_path, args, data):
    task = next((a.split("=")[1] for a in args if a.startswith("task=")), None)
    if task:  # searchformer_maze10_1gpu generates its 10x10 mazes in process (one GPU, one process)
        args = [*args, f"task.data_dir={data[task]}"]
    result = train([*args, *SHRUNK, "model.train.batch_size=4",
                    f"model.train.checkpoint_dir={tmp_path / 'checkpoints'}"], tmp_path, ranks=1)
    assert result.returncode == 0, failure(result)
    record = the_record(tmp_path)
    assert [p["step"] for p in record.curve if "train/loss" in p] == [1, 2]
    assert record.metrics, "tested"


def long_math_problems(folder, n: int, steps: int) -> str:
    """MATH-format problems whose step-by-step solutions are paper-length (1,000-2,000 tokens):
    the fixtures in tests/data/math are a few sentences each, so they never reach the paper's
    `max_length` of 2,048 (smoke mode caps it at 1,024)."""
    import json

    lines = []
    for i in range(n):
        total, sentences = 3 + i, []
        for k in range(steps):
            add = (7 * k + 3 * i) % 19 + 2
            sentences.append(f"Next we add {add} to the running total {total} and obtain {total + add}.")
            total += add
        lines.append(json.dumps({"problem": f"Start at {3 + i} and add the {steps} numbers of the list {i}.",
                                 "level": "Level 5", "type": "Algebra", "unique_id": f"long/{i}.json",
                                 "solution": " ".join(sentences) + f" The total is $\\boxed{{{total}}}$."}))
    path = folder / "problems.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_table5_6_math_trains_paper_length_solutions_in_full(tmp_path):
    # Issue 26: table5_6_math was the one paper training experiment no test ran at its shape. Its
    # paper config (max_length 2,048, grad_accum 16, 1,024 new tokens) with the tiny offline model,
    # one optimizer step, on solutions longer than smoke mode's 1,024-token cap.
    from hydra.utils import instantiate

    from dualformer.lm_finetune import encode_pairs
    from harness.records import read_record
    from harness.train import run
    from tasks.dualformer_paper.math import StepDropout

    problems = long_math_problems(tmp_path, n=6, steps=90)
    cfg = compose_run("train", ["experiment=table5_6_math", "model.pretrained=tiny", "logger=none",
                                f"task.train.source={problems}", f"task.test_data.source={problems}",
                                "task.limit=1", "task.protocol.n_samples=2", "task.protocol.pass_k=2",
                                "model.train.max_steps=1", f"results_dir={tmp_path}"], tmp_path)
    assert (cfg.model.train.max_length, cfg.model.train.grad_accum, cfg.model.generate.max_new_tokens) == (2048, 16, 1024)
    task, solver = instantiate(cfg.task), instantiate(cfg.model)()
    tokenizer, _ = solver._load(task)
    encoded, left_out = encode_pairs(tokenizer, task.training_pairs(StepDropout.none(), seed=0), 2048)
    longest = max(len(e.ids) for e in encoded)
    assert left_out == 0 and 1024 < longest <= 2048, f"paper-length solutions: longest {longest} tokens"
    record = read_record(tmp_path / run(cfg).filename)
    assert [p["step"] for p in record.curve] == [1] and record.curve[0]["train/skipped_long"] == 0
    assert record.metrics["test/gen_tokens_slow"] > 0 and 0 <= record.metrics["test/greedy1_slow"] <= 100
