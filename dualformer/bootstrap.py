"""Searchformer's search-dynamics bootstrapping (Dualformer Table 5.4 compares against it).

    python -m harness.train -m experiment=table5_4_bootstrap_mini      # rounds 1..3, one record each (round 0: table5_3's record)

Round 0 is the Searchformer (Complete-Trace) model itself. Round r starts from round r-1's weights:
1. sample `samples` responses (auto mode, temperature 1) for each of the first `n_prompts`
   training prompts;
2. per prompt keep, among the responses whose plan the task judges correct *and* optimal, the one
   with the fewest trace tokens; when none qualifies keep the original A* sequence;
3. fine-tune on those sequences for `steps` at `lr` (warm-up, cosine to 10%, a fresh optimizer;
   `upstream: true` runs a round as upstream does: 2,000 warm-up steps, the previous round's
   optimizer state reloaded, one sequence per GPU).
(specs/dualformer.md §1.4: upstream fine-tunes 10k steps at lr 7.5e-5 per round, 3 rounds.)

Every round checkpoints under the base model's checkpoint folder (`bootstrap<r>/`), with the
sequences it kept (`sequences.json`) and what its sampling found (`stats.json`), so a sweep over
`rounds` reuses the earlier rounds and a killed run resumes without sampling again.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from dualformer.data import plan_only_rows, tokenize
from dualformer.planning import PlanningModel, PlanningTask, train_config
from harness.api import ConfigError


@dataclass
class BootstrapSettings:
    samples: int = 32          # responses drawn per training prompt
    n_prompts: int = 1000      # the first n training prompts are resampled
    prompt_batch: int = 8      # prompts decoded together (times `samples` sequences)
    steps: int = 10_000        # fine-tuning steps per round
    lr: float = 7.5e-5
    warmup: int = 100
    batch_size: int = 16       # the global batch (each process takes batch_size / world)
    reload_optimizer: bool = False  # start from the previous round's AdamW moments, not fresh ones
    upstream: bool = False     # as upstream runs a round: 2,000 warm-up steps, the optimizer state
    #                            reloaded, 1 sequence per GPU (its step-1..3 sweep files)

    def resolved(self) -> "BootstrapSettings":
        """These settings with `upstream` applied (its warm-up, reload and per-process batch)."""
        if not self.upstream:
            return self
        from dataclasses import replace

        from dualformer.train import distributed

        return replace(self, warmup=UPSTREAM_WARMUP, reload_optimizer=True,
                       batch_size=UPSTREAM_BATCH_PER_GPU * distributed()[1])


# upstream's OptimConfig default warm-up, and batch_size 1 in sokoban-7722-m-trace-plan-100k-step-*.json
UPSTREAM_WARMUP, UPSTREAM_BATCH_PER_GPU = 2000, 1


class _StepOffset:
    """Each round's trainer counts from 0; the run's curve (and W&B) needs one rising step axis."""

    def __init__(self, inner: Any, offset: int) -> None:
        self.inner, self.offset = inner, offset

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.inner.log(metrics, step=step + self.offset)

    def restore(self, curve: list[dict[str, Any]], seconds: float) -> None:
        """A resumed round's earlier points, on the run's step axis (the recorder adds them)."""
        if hasattr(self.inner, "restore"):
            self.inner.restore([{**p, "step": p["step"] + self.offset} for p in curve], seconds)

    @property
    def run_identity(self) -> Any:
        return getattr(self.inner, "run_identity", None)


@dataclass
class BootstrapModel(PlanningModel):
    """A Searchformer improved by `rounds` rounds of search-dynamics bootstrapping."""

    rounds: int = 0
    bootstrap: dict[str, Any] | None = None  # BootstrapSettings fields; None: its defaults

    def settings(self) -> BootstrapSettings:
        if self.rounds < 0:
            raise ConfigError(f"model.rounds must be >= 0, got {self.rounds}")
        try:
            return BootstrapSettings(**(self.bootstrap or {})).resolved()
        except TypeError as error:
            raise ConfigError(f"model.bootstrap: {error}") from None

    @property
    def total_steps(self) -> int | None:
        """Round 0's steps and every round's fine-tuning steps: the step axis the run logs on."""
        return int(self.train.get("steps", 0)) + self.rounds * self.settings().steps

    def fit(self, task: PlanningTask, logger: Any) -> None:
        settings = self.settings()
        super().fit(task, logger)  # round 0, resumed from its checkpoint when already trained
        offset = int(self.train.get("steps", 0))
        for round_ in range(1, self.rounds + 1):
            self._improve(round_, settings, _StepOffset(logger, offset) if logger is not None else None)
            offset += settings.steps

    def _round_dir(self, round_: int) -> Path | None:
        base = self.train.get("checkpoint_dir")
        return Path(base) / f"bootstrap{round_}" if base else None

    def _improve(self, round_: int, settings: BootstrapSettings, logger: Any) -> None:
        from dualformer.train import Trainer

        folder = self._round_dir(round_)
        sequences, stats = self._load_round(folder)
        if sequences is None:
            sequences, stats = self.collect(settings, round_)
            from harness.ranks import rank

            if rank() == 0:  # every rank holds the same gathered sequences: one writer (two raced on the .tmp)
                self._save_round(folder, sequences, stats)
        if logger is not None and stats:  # also when reused: each record says what every round found
            logger.log({f"bootstrap/{k}": v for k, v in stats.items()}, step=0)
        self._bootstrap_data = sequences
        config = train_config(dict(steps=settings.steps, batch_size=settings.batch_size,
                                   lr=settings.lr, warmup=settings.warmup, seed=self.seed + round_,
                                   log_every=int(self.train.get("log_every", 10)),
                                   checkpoint_every=int(self.train.get("checkpoint_every", 500)),
                                   checkpoint_dir=str(folder) if folder else None))
        trainer = Trainer(self.model, config, self._bootstrap_batch, len(sequences))
        if settings.reload_optimizer:  # a checkpoint of this round itself, when there, wins in run()
            trainer.optimizer.load_state_dict(self.trainer.optimizer.state_dict())
        trainer.run(logger)
        self.trainer = trainer

    def collect(self, settings: BootstrapSettings, round_: int) -> tuple[list[tuple[list[int], list[int]]], dict]:
        """(prompt ids, decoder ids) per training prompt, and what the sampling found. Under DDP
        each rank samples its share of the prompts and all ranks get every kept sequence
        (harness.ranks); each prompt has its own random stream, so the sequences kept do not
        depend on how many ranks split the work."""
        from harness.ranks import answer_sharded

        examples = self.task.train[:settings.n_prompts]
        found, _ = answer_sharded(examples, lambda chunk: self._best_of(chunk, settings, round_),
                                  settings.prompt_batch, desc=f"bootstrap {round_}: sample")
        kept = [sequence for sequence, _, _ in found]
        stats = {"improved_fraction": sum(improved for _, improved, _ in found) / len(examples),
                 "trace_tokens_kept": float(np.mean([trace for _, _, trace in found])),
                 "trace_tokens_astar": float(np.mean([tokenize(e).trace_length for e in examples]))}
        return kept, stats

    def _best_of(self, chunk: list[Any], settings: BootstrapSettings, round_: int
                 ) -> list[tuple[tuple[list[int], list[int]], bool, int]]:
        """Per prompt: (the sequence kept, whether a sample beat A*, its trace tokens)."""
        import torch

        from dualformer.sample import prompt_seed, sample

        vocab = self.task.vocab
        bos, eos = vocab.encode(["bos", "eos"])
        device = next(self.model.parameters()).device
        prompts = [vocab.encode(tokenize(e).encoder_tokens()) for e in chunk]
        ids, mask = (t.to(device) for t in self._pad(prompts))
        seeds = [prompt_seed(self.seed, "bootstrap", round_, e.id) for e in chunk]
        with torch.no_grad():
            out = sample(self.model, ids, mask, bos, eos, n=settings.samples, temperature=self.temperature,
                         max_len=self.response_limit(), seeds=seeds, bf16=self.decode_bf16(device))
        found = []
        for example, prompt, responses, finished in zip(chunk, prompts, out.tokens, out.finished):
            best = self._shortest_optimal(example, responses, finished)
            if best is None:
                reference = tokenize(example)
                found.append(((prompt, vocab.encode(reference.decoder_tokens())), False, reference.trace_length))
            else:
                found.append(((prompt, [bos, *best[1], eos]), True, best[0]))
        return found

    def _shortest_optimal(self, example: Any, responses: list[list[int]], finished: list[bool]
                          ) -> tuple[int, list[int]] | None:
        """(trace tokens, tokens) of the correct, optimal response with the shortest trace."""
        best = None
        for tokens, done in zip(responses, finished):
            if not done:
                continue
            plan, trace = self._read(tokens)
            if plan and len(plan) == len(example.plan) and self.task.is_correct(example, plan):
                if best is None or trace < best[0]:
                    best = (trace, tokens)
        return best

    def _bootstrap_batch(self, indices: list[int], epoch: int):
        from dualformer.train import Batch

        rows = [self._bootstrap_data[i] for i in indices]
        tokens = self._pad([d for _, d in rows])
        # marked so the trainer counts the plan-only sequences a round trains on (fast-path responses kept)
        return Batch(*self._pad([p for p, _ in rows]), *tokens, plan_only=plan_only_rows(tokens[0], self.task.vocab))

    # -- a round's kept sequences and findings, so a resumed round does not sample again -------
    @staticmethod
    def _load_round(folder: Path | None) -> tuple[list[tuple[list[int], list[int]]] | None, dict | None]:
        """The round's kept sequences and what its sampling found (None, None: not sampled yet;
        rounds sampled before the findings were kept beside them give None for those)."""
        path = folder / "sequences.json" if folder else None
        if path is None or not path.exists():
            return None, None
        stats = folder / "stats.json"
        return ([(p, d) for p, d in json.loads(path.read_text())],
                json.loads(stats.read_text()) if stats.exists() else None)

    @staticmethod
    def _save_round(folder: Path | None, sequences: list[tuple[list[int], list[int]]], stats: dict) -> None:
        if folder is None:
            return
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in (("stats.json", stats), ("sequences.json", sequences)):  # sequences last: they mark the round sampled
            tmp = folder / f"{name}.tmp"
            tmp.write_text(json.dumps(content))
            os.replace(tmp, folder / name)
