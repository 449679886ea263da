"""Causal-LM fine-tuning on step-structured MATH: the offline tiny model, the training batches,
batched evaluation, and the whole fit + test + record pipeline through `harness.train`.

Needs torch and transformers (the `train` extra); skipped without them. Nothing is downloaded:
the tiny model is a random Llama and its tokenizer is learned from tests/data/math/.
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from harness.api import ConfigError, Model  # noqa: E402
from harness.records import read_record  # noqa: E402
from harness.train import run  # noqa: E402
from harness.runs import RunInfo
from support import DATA, compose_run, sweep_jobs  # noqa: E402
from tasks.dualformer_paper.math import DataSpec, EvalProtocol, MathQuery, MathTask, StepDropout  # noqa: E402

FIXTURES = DATA / "math"
TASK_OVERRIDES = [f"task.train.source={FIXTURES / 'train.jsonl'}",
                  f"task.test_data.source={FIXTURES / 'test.jsonl'}", "task.protocol.n_samples=2",
                  "task.protocol.pass_k=2"]


class Points:
    """A logger double that keeps what it is given."""

    def __init__(self) -> None:
        self.points: list[tuple[int, dict]] = []

    def log(self, metrics, step):
        self.points.append((step, dict(metrics)))


def fixture_task(**kw) -> MathTask:
    kw.setdefault("protocol", EvalProtocol(n_samples=2, pass_k=2))
    return MathTask(train=DataSpec(str(FIXTURES / "train.jsonl")),
                    test_data=DataSpec(str(FIXTURES / "test.jsonl"), split="test"), **kw)


def tiny_solver(**kw):
    from dualformer.lm_finetune import CausalLMSolver, GenerateSpec, TrainSpec

    kw.setdefault("train", TrainSpec(epochs=1, lr=3e-3, grad_accum=1, warmup_ratio=0.0, log_every=1))
    kw.setdefault("generate", GenerateSpec(max_new_tokens=8))
    return CausalLMSolver(pretrained="tiny", device="cpu", bf16=False, seed=3, **kw)


def corpus() -> list[str]:
    return [p.prompt + p.target for p in fixture_task().training_pairs(StepDropout.none(), seed=0)]


def test_tiny_tokenizer_is_learned_offline_and_encodes_any_text():
    from dualformer.lm_finetune import build_tiny_tokenizer

    tok = build_tiny_tokenizer(corpus(), vocab_size=400)
    assert len(tok) <= 400 and tok.bos_token_id != tok.eos_token_id != tok.pad_token_id
    for text in corpus()[:3] + ["Unseen: ∫ é 🙂 \\boxed{42}"]:
        ids = tok(text).input_ids
        assert ids[0] == tok.bos_token_id and tok.decode(ids, skip_special_tokens=True) == text
    assert build_tiny_tokenizer(corpus(), 400)("Step: 1").input_ids == tok("Step: 1").input_ids


def test_mode_prefix_tokenizes_as_the_start_of_its_training_targets():
    from dualformer.lm_eval import encode_prompt
    from dualformer.lm_finetune import build_tiny_tokenizer, encode_pairs

    task, tok = fixture_task(), build_tiny_tokenizer(corpus(), vocab_size=400)
    for pair in task.training_pairs(StepDropout(p=0.5, mix=(0.5, 0, 0.5)), seed=1):
        (encoded,), _ = encode_pairs(tok, [pair], max_length=4096)
        mode = "fast" if pair.kind == "fast" else "slow"
        forced = encode_prompt(tok, pair.prompt, task.format.mode_prefix(mode))
        assert list(encoded.ids[:len(forced)]) == forced  # what inference feeds is what training saw
        assert encoded.ids[-1] == tok.eos_token_id


def test_batches_mask_the_prompt_and_padding_out_of_the_loss():
    from dualformer.lm_finetune import IGNORE, Encoded, collate

    ids, mask, labels = collate([Encoded((5, 6, 7, 8), 2), Encoded((5, 9), 1)], pad_id=0, device="cpu")
    assert ids.tolist() == [[5, 6, 7, 8], [5, 9, 0, 0]] and mask.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert labels.tolist() == [[IGNORE, IGNORE, 7, 8], [IGNORE, 9, IGNORE, IGNORE]]


def test_generation_helpers_pad_left_and_stop_at_eos():
    from dualformer.lm_eval import left_pad, until_eos

    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0, device="cpu")
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert until_eos([7, 8, 2, 9], eos_id=2, pad_id=0) == [7, 8]
    assert until_eos([7, 0, 0], eos_id=2, pad_id=0) == [7]


def test_fit_solve_is_seeded_batched_and_leaves_global_rng_alone():
    import torch

    task = fixture_task(limit=3)
    state = torch.random.get_rng_state()
    runs = []
    for _ in range(2):
        solver, logger = tiny_solver(), Points()
        assert isinstance(solver, Model)
        solver.fit(task, logger)
        runs.append((task.test(solver.solve), logger.points))
    assert runs[0] == runs[1]
    assert torch.equal(state, torch.random.get_rng_state())
    metrics, points = runs[0]
    assert {"greedy1_slow", "pass2_slow", "gen_tokens_fast", "steps_fast"} <= set(metrics)
    assert [step for step, _ in points] == [1, 2, 3] and "train/partial" in points[-1][1]
    query = MathQuery(("Problem: 1+1?\nSolution:\n",) * 5, "Answer:", n_samples=3, temperature=0.7, top_p=0.9)
    attempts = solver.solve(query)
    assert len(attempts) == 5 and all(len(a.samples) == 3 for a in attempts)
    assert all(a.greedy.text.startswith("Answer:") and 2 <= a.greedy.n_tokens <= 10 for a in attempts)


def test_solve_before_fit_and_vllm_without_a_checkpoint_are_clear_errors():
    from dualformer.lm_finetune import GenerateSpec

    with pytest.raises(ConfigError, match="before fit"):
        tiny_solver().solve(MathQuery(("x",), "", 0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        tiny_solver(generate=GenerateSpec(backend="vllm"))
    with pytest.raises(ConfigError, match="backend"):
        GenerateSpec(backend="tgi")


def test_lora_trains_only_adapters_and_saves_a_standalone_checkpoint(tmp_path):
    pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dualformer.lm_finetune import LoraSpec, TrainSpec, save_checkpoint

    train = TrainSpec(epochs=2, lr=1e-2, batch_size=2, grad_accum=1, log_every=1, gradient_checkpointing=True)
    solver, logger = tiny_solver(lora=LoraSpec(r=4, alpha=8, dropout=0.0), train=train), Points()
    solver.fit(fixture_task(n_train=4), logger)
    trainable = [n for n, p in solver.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    losses = [point["train/loss"] for _, point in logger.points]
    assert len(losses) == 4 and losses[-1] < losses[0]  # gradients reach the adapters
    query = MathQuery(("Problem: 1+1?\nSolution:\n",), "Step:", n_samples=0, temperature=1.0, top_p=1.0)
    before = solver.solve(query)
    merged = save_checkpoint(solver.model, solver.tokenizer, tmp_path / "ckpt")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "ckpt")
    assert not any("lora" in n for n, _ in model.named_parameters())  # merged: vLLM can read it
    assert tokenizer("Step: 1").input_ids == solver.tokenizer("Step: 1").input_ids
    from dualformer.lm_eval import HfGenerator

    assert HfGenerator(model, tokenizer, solver.generate, seed=3)(query) == before  # same answers
    assert merged is not None


def test_pipeline_runs_through_harness_train_and_records(run_dir):
    overrides = ["task=math", "model=causal_lm_tiny", "logger=none", "progress=false", "task.limit=3",
                 *TASK_OVERRIDES]
    cfg = compose_run("train", overrides, run_dir)
    record = run(cfg)
    back = read_record(run_dir / record.filename)
    assert back.metrics == record.metrics and back.method == "causal_lm_tiny" and back.task == "math"
    for mode in ("slow", "fast"):
        assert 0 <= back.metrics[f"test/greedy1_{mode}"] <= 100
        assert 0 <= back.metrics[f"test/pass2_{mode}"] <= 100
        assert back.metrics[f"test/gen_tokens_{mode}"] > 0
    losses = [p["train/loss"] for p in back.curve]
    assert len(losses) == 6 and losses[-1] < losses[0]  # 12 problems, batch 4, 2 epochs
    assert sum("train/full" in p for p in back.curve) == 2  # the dropout drawn, once per epoch
    assert (run_dir / "progress.jsonl").read_text().count("\n") == len(back.curve)
    assert back.config["model"]["dropout"]["p"] == 0.1


def test_experiment_declares_the_table_5_6_grid(run_dir):
    from hydra.utils import instantiate

    cfg = compose_run("train", ["experiment=table5_6_math"], run_dir)
    assert cfg.model.pretrained == "mistralai/Mistral-7B-v0.1" and cfg.task.protocol.n_samples == 20
    solver = instantiate(cfg.model)()  # builds without touching the hub: weights load in fit()
    assert solver.model is None and solver.dropout.p == 0.1 and solver.train.grad_accum == 16
    jobs = [dict(kv.split("=", 1) for kv in job) for job in sweep_jobs(cfg)]
    assert len(jobs) == 10
    methods = set()
    for job in jobs:
        overrides = ["experiment=table5_6_math", *(f"{k}={v}" for k, v in job.items())]
        job_cfg = compose_run("train", overrides, run_dir)
        methods.add(RunInfo.from_config(job_cfg, method_group="model").method)
        assert job_cfg.model.pretrained == job_cfg.bases[job["base"]]
    assert len(methods) == 10  # every grid point is its own row and record file
    assert methods == set(cfg.table.methods) and set(cfg.table.paper) <= methods


def test_experiment_in_smoke_mode(tmp_path):
    """The CI-sized run of one grid point: the experiment's smoke block swaps in the tiny offline
    model and the fixture data; smoke mode scores 3 test problems and records in the run folder."""
    base = ["experiment=table5_6_math", "mode=smoke", "logger=none", "progress=false"]
    cfg = compose_run("train", base + ["base=llama3_8b", "model.dropout.p=0.2"], tmp_path)
    record = run(cfg)
    assert record.mode == "smoke" and record.config["task"]["limit"] == 3
    assert record.config["model"]["pretrained"] == "tiny" and record.config["method"] == "llama3_8b_p0.2"
    assert record.config["model"]["dropout"]["p"] == 0.2 and record.metrics["test/greedy1_slow"] >= 0
    assert json.loads((tmp_path / record.filename).read_text())["metrics"] == record.metrics


@pytest.mark.slow
def test_tiny_model_learns_the_answers_it_is_trained_on():
    from dualformer.lm_finetune import GenerateSpec, TrainSpec

    problems = DataSpec(str(FIXTURES / "test.jsonl"))  # trained and tested on the same 4 problems
    task = MathTask(train=problems, test_data=problems, protocol=EvalProtocol(n_samples=2, pass_k=2))
    solver = tiny_solver(train=TrainSpec(epochs=60, lr=3e-3, grad_accum=1, warmup_ratio=0.1, log_every=100),
                         generate=GenerateSpec(max_new_tokens=40))
    solver.fit(task, Points())
    metrics = task.test(solver.solve)
    assert metrics["greedy1_fast"] >= 75 and metrics["greedy1_slow"] >= 50
