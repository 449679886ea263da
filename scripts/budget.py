"""GPU-hours per paper table, ESTIMATED from FLOP counts: no GPU was measured for these figures.

    python scripts/budget.py measure [--n 200]      # sequence lengths of generated data -> results/budget/lengths.json
    python scripts/budget.py table                  # the table, from the configs and those lengths
    python scripts/budget.py table --write-readme   # the same, put into README.md between its markers

What each experiment runs is read from its config, sweep included (tasks, models, seeds, steps,
global batch, preset, test tasks, samples, modes, bootstrap rounds); Tables 5.1-5.4 share their
trained models (checkpoint_group), so a model is counted once, by the first table that trains it.
Sequence lengths are measured on generated tasks of each size (`measure`): prompt tokens, and
decoder tokens under each model's trace dropout (one draw per task). Training FLOPs per step
simulate the batches the paper configs build (random: each process pads its share to its
longest sequence; bucketed: each sequence to a multiple of pad_multiple) with dualformer.flops.
Sampling FLOPs: test tasks x samples x modes, and each bootstrap round's training prompts x
samples, at the length of a full A* trace (slow, auto: an upper bound for auto) or of a plan
(fast). GPU-hours = FLOPs / (peak x utilisation), both assumptions given as flags (defaults: an
H100 SXM's 989 TFLOP/s dense bf16; 40% for training, 10% for sampling, which is bound by
memory and kernel launches more than by FLOPs at these widths). scripts/gpu_check.sh measures
tokens/s and MFU on a GPU; its figures replace these assumptions once a GPU has run it.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LENGTHS = ROOT / "results" / "budget" / "lengths.json"
README_MARKERS = ("<!-- budget: start (scripts/budget.py table --write-readme) -->", "<!-- budget: end -->")
TASKS = ("maze10", "maze15", "maze20", "maze25", "maze30", "sokoban")
MODELS = ("solution_only", "searchformer", "dualformer")  # the three trace-dropout settings
EXPERIMENTS = {"table5_1_fast": "5.1 fast", "table5_2_slow": "5.2 slow", "table5_3_auto": "5.3 auto",
               "table5_4_bootstrap": "5.4 bootstrap", "searchformer_maze10_1gpu": "Searchformer maze10 1-GPU"}


@dataclass(frozen=True)
class Assumptions:
    peak_tflops: float = 989.0   # H100 SXM, dense bf16
    train_mfu: float = 0.40
    sample_mfu: float = 0.10
    gpus: int = 8                # processes the global batch is split over (each pads its share)
    # One decoding step of a batch, however few its rows: ~150 kernel launches for the `s` preset
    # (no CUDA graphs). At these widths this, not FLOPs, bounds sampling: 10,000-token rollouts.
    decode_step_ms: float = 1.0
    train_step_ms: float = 10.0  # the least a training step takes (forward + backward launches)

    def train_seconds(self, steps: int, flops_per_step: float) -> float:
        """`steps` training steps: each its FLOP time, or the step floor where that is longer."""
        return steps * max(flops_per_step / (self.peak_tflops * 1e12 * self.train_mfu), self.train_step_ms / 1000)


def compose(overrides: list[str]):
    """The run's config as `python -m harness.train <overrides>` composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3", job_name="budget"):
        cfg = hydra_compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # the configs' ${hydra:runtime.choices...} resolve
    return cfg


# -- measure ---------------------------------------------------------------------------------
def measure(n: int) -> dict:
    """Per task: vocabulary size, prompt lengths and each model's decoder lengths on `n` tasks."""
    from hydra.utils import instantiate

    from dualformer.data import tokenize

    out = {}
    for task in TASKS:
        cfg = compose([f"task={task}", "model=searchformer", f"task.n_train={n}", "task.n_test=1", "task.data_dir=null"])
        planning = instantiate(cfg.task)
        sequences = [tokenize(e) for e in planning.train]
        entry = {"vocab": len(planning.vocab) + 1, "prompt": [len(s.encoder_tokens()) for s in sequences]}
        for model in MODELS:
            dropout = instantiate(compose([f"task={task}", f"model={model}"]).model.dropout)
            rng = np.random.default_rng(0)
            entry[model] = {"dropout": repr(dropout),
                            "decoder": [len(dropout(s, rng, key=e.id)[1]) for s, e in zip(sequences, planning.train)]}
        out[task] = entry
        print(f"{task}: prompt {np.mean(entry['prompt']):.0f}, decoder "
              + ", ".join(f"{m} {np.mean(entry[m]['decoder']):.0f}" for m in MODELS), file=sys.stderr)
    return out


# -- the jobs of an experiment ---------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    task: str
    model: str
    seed: str
    cfg: object

    @property
    def base_model(self) -> str:
        """The trained model it starts from: bootstrap rounds fine-tune the Searchformer."""
        return "searchformer" if self.model.startswith("searchformer_step") else self.model


def jobs(experiment: str) -> list[Job]:
    """The sweep's grid (hydra.sweeper.params), each point composed."""
    from omegaconf import OmegaConf

    params = dict(compose([f"experiment={experiment}"]).hydra.sweeper.params)
    keys = list(params)
    grid = itertools.product(*(str(params[k]).split(",") for k in keys))
    out = []
    for values in grid:
        cfg = compose([f"experiment={experiment}", *(f"{k}={v}" for k, v in zip(keys, values))])
        choices = cfg.hydra.runtime.choices
        # resolved now: ${hydra:...} resolves against whichever config was composed last
        bootstrap = cfg.get("bootstrap")
        resolved = OmegaConf.create({
            "model": OmegaConf.to_container(cfg.model, resolve=True), "task": {"n_test": cfg.task.n_test},
            "bootstrap": OmegaConf.to_container(bootstrap, resolve=True) if bootstrap is not None else None,
            "checkpoint_group": cfg.get("checkpoint_group")})
        out.append(Job(choices.task, choices.model, str(cfg.seed), resolved))
    return out


# -- costs ----------------------------------------------------------------------------------
def step_flops(config, prompts: np.ndarray, decoders: np.ndarray, batch: int, bucketed: bool,
               multiple: int, gpus: int) -> float:
    """Mean FLOPs of one training step (the global batch) over simulated batches."""
    from dualformer.flops import train_flops

    if bucketed:  # similar lengths per batch: each sequence costs its own length, padded up
        widths = -(-decoders // multiple) * multiple
        per_row = np.mean([train_flops(config, int(p), int(w) - 1).total for p, w in zip(prompts, widths)])
        return float(batch * per_row)
    share = max(1, batch // gpus)  # each process pads its share to its own longest sequence
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(prompts), share) for _ in range(200)]
    per_share = np.mean([share * train_flops(config, int(prompts[d].max()), int(decoders[d].max()) - 1).total
                         for d in draws])
    return float(per_share * batch / share)


def sample_seconds(config, prompts: np.ndarray, decoders: np.ndarray, n_prompts: int, samples: int,
                   prompt_batch: int, assume: Assumptions) -> float:
    """GPU seconds to draw `samples` responses for each of `n_prompts` prompts, `prompt_batch`
    prompts decoded together: per batch the larger of its FLOP time and its step latency (the
    batch runs until its longest response ends). bos is given: a response is the rest."""
    from dualformer.flops import decode_flops

    rows = np.array([decode_flops(config, int(p), int(d) - 1) for p, d in zip(prompts, decoders)], dtype=float)
    rate = assume.peak_tflops * 1e12 * assume.sample_mfu
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(rows), prompt_batch) for _ in range(200)]
    per_batch = np.mean([max(samples * rows[d].sum() / rate, (decoders[d].max() - 1) * assume.decode_step_ms / 1000)
                         for d in draws])
    return float(-(-n_prompts // prompt_batch) * per_batch)


class Budget:
    """FLOPs per experiment: training (each model once), bootstrap rounds (each once), sampling."""

    def __init__(self, lengths: dict, assume: Assumptions) -> None:
        self.lengths, self.assume = lengths, assume
        self.trained: set[tuple] = set()

    def _model_config(self, job: Job):
        from dualformer.model import preset

        return preset(job.cfg.model.preset, self.lengths[job.task]["vocab"])

    def _arrays(self, task: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        entry = self.lengths[task]
        return np.array(entry["prompt"]), np.array(entry[model]["decoder"])

    def experiment(self, experiment: str) -> dict[str, float]:
        """runs; train: GPU seconds of the training it adds; sample: of its sampling."""
        totals = {"runs": 0, "train": 0.0, "sample": 0.0}
        for job in jobs(experiment):
            self._check(job)
            config, model = self._model_config(job), job.cfg.model
            totals["runs"] += 1
            key = (job.cfg.get("checkpoint_group"), job.task, job.base_model, job.seed)
            if key not in self.trained:
                self.trained.add(key)
                prompts, decoders = self._arrays(job.task, job.base_model)
                totals["train"] += self.assume.train_seconds(model.train.steps, step_flops(
                    config, prompts, decoders, model.train.batch_size, model.batching == "bucketed",
                    model.pad_multiple, self.assume.gpus))
            for round_ in range(1, int(model.get("rounds", 0)) + 1):
                self._bootstrap_round(job, config, key, round_, totals)
            for mode in model.modes:  # fast: a plan; slow and auto: (up to) a full trace
                prompts, decoders = self._arrays(job.task, "solution_only" if mode == "fast" else "searchformer")
                totals["sample"] += sample_seconds(config, prompts, decoders, job.cfg.task.n_test, model.samples,
                                                   model.prompt_batch, self.assume)
        return totals

    def _bootstrap_round(self, job: Job, config, key: tuple, round_: int, totals: dict) -> None:
        if (*key, round_) in self.trained:  # step3 reuses the rounds step1 and step2 ran
            return
        self.trained.add((*key, round_))
        settings = job.cfg.bootstrap
        prompts, decoders = self._arrays(job.task, "searchformer")
        totals["sample"] += sample_seconds(config, prompts, decoders, settings.n_prompts, settings.samples,
                                           settings.prompt_batch, self.assume)
        totals["train"] += self.assume.train_seconds(settings.steps, step_flops(
            config, prompts, decoders, settings.batch_size, False, 1, self.assume.gpus))

    def _check(self, job: Job) -> None:
        """Lengths measured under another dropout than the configs' now would be a stale table."""
        for model in sorted({job.base_model, "solution_only", "searchformer"}):
            entry = self.lengths.get(job.task, {}).get(model)
            if entry is None or entry["dropout"] != dropout_now(job.task, model):
                raise SystemExit(f"error: {LENGTHS.relative_to(ROOT)} has no lengths for {job.task}/{model} under "
                                 f"its current dropout: run python scripts/budget.py measure")


@functools.lru_cache(maxsize=None)
def dropout_now(task: str, model: str) -> str:
    """The model's trace dropout on the task, as the configs say now."""
    from hydra.utils import instantiate

    return repr(instantiate(compose([f"task={task}", f"model={model}"]).model.dropout))


def table(lengths: dict, assume: Assumptions) -> str:
    """The README's budget table (markdown), its assumptions stated under it."""
    budget = Budget(lengths, assume)
    rows, total = [], [0.0, 0.0]
    for experiment, name in EXPERIMENTS.items():
        got = budget.experiment(experiment)
        train, sample = got["train"] / 3600, got["sample"] / 3600
        total = [total[0] + train, total[1] + sample]
        rows.append(f"| {name} | `{experiment}` | {got['runs']} | {train:,.2f} | {sample:,.2f} | {train + sample:,.2f} |")
    lines = ["| Paper table | experiment | runs | training GPU-h | sampling GPU-h | total GPU-h |",
             "|---|---|---:|---:|---:|---:|", *rows,
             f"| **all** | | | {total[0]:,.1f} | {total[1]:,.1f} | **{sum(total):,.1f}** |", "",
             f"ESTIMATES from FLOP counts (dualformer/flops.py), not measured on a GPU: {assume.peak_tflops:g} "
             f"TFLOP/s peak (H100 SXM dense bf16) at {assume.train_mfu:.0%} utilisation for training (a step "
             f"takes at least {assume.train_step_ms:g} ms) and "
             f"{assume.sample_mfu:.0%} for sampling, where a decoding step of a batch takes at least "
             f"{assume.decode_step_ms:g} ms (kernel launches bound it at these widths); batches split over "
             f"{assume.gpus} GPUs as in the paper commands. Lengths measured on generated tasks (results/budget/lengths.json); a model shared by "
             "Tables 5.1-5.4 is counted once, by the first table that trains it; slow and auto responses "
             "are counted at the full A* trace length. Table 5.6 (MATH, 7-8B LLM fine-tuning) is not in it. "
             "Regenerate: `python scripts/budget.py table --write-readme`."]
    return "\n".join(lines)


def write_readme(text: str, readme: Path = ROOT / "README.md") -> None:
    content = readme.read_text()
    start, end = content.index(README_MARKERS[0]) + len(README_MARKERS[0]), content.index(README_MARKERS[1])
    readme.write_text(content[:start] + "\n" + text + "\n" + content[end:])


def readme_table(readme: Path = ROOT / "README.md") -> str:
    content = readme.read_text()
    return content[content.index(README_MARKERS[0]) + len(README_MARKERS[0]):content.index(README_MARKERS[1])].strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["measure", "table"])
    parser.add_argument("--n", type=int, default=200, help="measure: generated tasks per size")
    parser.add_argument("--write-readme", action="store_true", help="table: put it into README.md")
    for field in ("peak_tflops", "train_mfu", "sample_mfu", "gpus", "decode_step_ms", "train_step_ms"):
        default = getattr(Assumptions(), field)
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    if args.command == "measure":
        LENGTHS.parent.mkdir(parents=True, exist_ok=True)
        LENGTHS.write_text(json.dumps(measure(args.n)) + "\n")
        return
    if not LENGTHS.exists():
        raise SystemExit("error: no measured lengths: run python scripts/budget.py measure first")
    assume = Assumptions(*(getattr(args, f) for f in ("peak_tflops", "train_mfu", "sample_mfu", "gpus",
                                                      "decode_step_ms", "train_step_ms")))
    text = table(json.loads(LENGTHS.read_text()), assume)
    if args.write_readme:
        write_readme(text)
    print(text)


if __name__ == "__main__":
    main()
