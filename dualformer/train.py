"""Training the encoder-decoder: AdamW, warm-up then cosine, exact resume, CPU / GPU / DDP.

    trainer = Trainer(model, TrainConfig(steps=2000, lr=2.5e-4), make_batch, n_examples)
    trainer.run(logger)                      # resumes from config.checkpoint_dir when a checkpoint is there
    torchrun --nproc_per_node=8 -m harness.train experiment=<experiment>    # DDP, one process per GPU

`make_batch(indices, epoch)` turns example indices into a `Batch` (the data module applies trace
dropout there, drawn from the example index and epoch, so a resumed run sees exactly the same
data). The order of examples is a seeded permutation per epoch; a checkpoint stores the model, the
optimizer, the step (the schedule is a function of it), the data position and the RNG states, so
the losses after a resume are bit-identical to an uninterrupted run.

A checkpoint also stores its identity (the training settings, the architecture, the number of
examples and what the caller says about its data, e.g. a fingerprint of the training set and the
dropout) and is only ever resumed under the same identity; it keeps the logged curve and the
seconds spent so far, so a resumed run's record is the whole run. With the loss, every `log_every`
steps, the curve carries what the steps so far trained on, over all processes and attempts:
`train/tokens_seen` (prompt and target tokens, padding aside), `train/sequences_seen`, and
`train/plan_only_seen` where the batches mark their rows with no trace (`Batch.plan_only`).
SIGTERM / SIGUSR1 / SIGUSR2 (what SLURM sends before it stops or requeues a job) save a checkpoint
after the current step, then exit.
`batch_size` is the global batch: each of `world` processes takes `batch_size / world` of it, and
the loss a step returns and logs is the mean over the processes (the global batch's). DDP does not
broadcast buffers: the rotary tables are derived, and grow per rank (issue 26).
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from dualformer.model import Transformer
from dualformer.train_config import TrainConfig  # noqa: F401 (its home before; imported from here)
from harness.api import ConfigError
from harness.identity import differing_keys
from harness.progress import bar as progress_bar

# TrainConfig fields that do not change the weights a checkpoint holds.
NOT_IDENTITY = ("log_every", "checkpoint_every", "checkpoint_dir", "device", "bf16", "compile", "pin_memory")
log = logging.getLogger(__name__)
SEEN = ("train/tokens_seen", "train/sequences_seen", "train/plan_only_seen")  # Trainer.seen, in order
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)  # USR2: submitit's pre-timeout signal


@dataclass
class Batch:
    prompt: torch.Tensor       # (batch, prompt length) ids, right-padded
    prompt_mask: torch.Tensor  # True on real tokens
    tokens: torch.Tensor       # (batch, decoder length): bos, trace/plan, eos, padding
    token_mask: torch.Tensor
    plan_only: torch.Tensor | None = None  # (batch,) True where the target has no trace; None: not said

    # vars, not asdict: asdict deep-copies every tensor, one extra copy of each batch per step
    def to(self, device: torch.device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) if t is not None else None for t in vars(self).values()))

    def pin_memory(self) -> "Batch":
        """In page-locked memory: `to(cuda, non_blocking=True)` is then an asynchronous copy."""
        return Batch(*(t.pin_memory() if t is not None else None for t in vars(self).values()))


def distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun, else (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def fingerprint(items: Iterable[Any]) -> str:
    """A short stable hash of a sequence (e.g. the training examples' ids): part of an identity."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item}\n".encode())
    return digest.hexdigest()[:16]


def all_sum(value: float) -> float:
    """The sum of `value` over the DDP processes; `value` itself outside DDP."""
    return all_sums([value])[0]


def all_sums(values: list[float]) -> list[float]:
    """Each value summed over the DDP processes in one all-reduce; the values themselves outside DDP."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return list(values)
    nccl = torch.distributed.get_backend() == "nccl"  # NCCL reduces GPU tensors only
    total = torch.tensor(values, dtype=torch.float64, device="cuda" if nccl else "cpu")
    torch.distributed.all_reduce(total)
    return total.tolist()


class Preempted(SystemExit):
    """Raised after a stop signal, once the checkpoint is written; exit status 128 + signal."""


@contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Collect SIGTERM / SIGUSR1 while training (main thread only), restoring the old handlers."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def training_claim(checkpoint_dir: str | None, world: int) -> Iterator[None]:
    """One trainer per checkpoint: Tables 5.1-5.4 share models (checkpoint_group), and two jobs of one
    model in a parallel sweep both trained it from step 0. The second now waits on this lock and
    then resumes the finished checkpoint. A POSIX lock (lockf) is what NFS locks across hosts; a DDP
    run's ranks would wait on each other, so it takes none (one job per model is the sweep's part)."""
    if not checkpoint_dir or world > 1:
        yield
        return
    import fcntl

    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "training.lock", "a+") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.info("waiting for %s: another job is training this model; this one then reuses it", folder)
            fcntl.lockf(handle, fcntl.LOCK_EX)  # released when that job ends, however it ends
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)


class Trainer:
    def __init__(self, model: Transformer, config: TrainConfig,
                 make_batch: Callable[[list[int], int], Batch], n_examples: int,
                 identity: dict[str, Any] | None = None,
                 order: Callable[[int], np.ndarray] | None = None, prefetch: bool = True,
                 fused_adamw: bool | None = None) -> None:
        """identity: what else defines the checkpoint (data, dropout); order: epoch -> permutation
        of the examples (e.g. dualformer.batching's length buckets), None: a seeded random one.
        prefetch: build the next batch in a thread while this step runs (the same batches: they
        are a function of their indices and epoch; False: each built in line, before its step).
        fused_adamw: one fused kernel per optimizer step (None: on a GPU; same steps to float error)."""
        self.config, self.make_batch, self.n_examples, self.order = config, make_batch, n_examples, order
        self.rank, self.world = distributed()
        if config.batch_size % self.world:
            raise ConfigError(f"model.train.batch_size is the global batch: {config.batch_size} does not "
                              f"split over {self.world} processes")
        self.identity = {"train": {k: v for k, v in asdict(config).items() if k not in NOT_IDENTITY},
                         "model": asdict(model.config) if is_dataclass(getattr(model, "config", None)) else None,
                         "n_examples": n_examples, **(identity or {})}
        self.history: list[dict[str, Any]] = []  # the logged points, kept in the checkpoint
        self.earlier_seconds = 0.0  # training seconds of the attempts this one resumes
        # What the steps so far trained on, over all processes and attempts, logged with the loss so a
        # table can say how much training a model had (NaN: some batch did not mark its plan-only
        # rows; None: resumed from a checkpoint that kept no counts, so any count would be partial).
        self.seen: dict[str, float] | None = dict.fromkeys(SEEN, 0.0)
        # The run that trained these weights (git sha, config hash: the logger's run_identity),
        # kept in the checkpoint, so a run that only evaluates them names it in its record.
        self.trained_by: dict[str, str] | None = None
        cuda = torch.cuda.is_available() and config.device in ("auto", "cuda")
        self.device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
        self.bf16 = cuda if config.bf16 is None else config.bf16
        self.pin_memory = cuda if config.pin_memory is None else config.pin_memory
        if self.pin_memory and not cuda:
            raise ConfigError("model.train.pin_memory=true needs a GPU (pinned memory is for copies to one)")
        if cuda:  # NCCL's collectives (and all_gather_object) use the current device
            torch.cuda.set_device(self.device)
        self.model = model.to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, betas=config.betas,
                                           weight_decay=config.weight_decay,
                                           fused=cuda if fused_adamw is None else fused_adamw)
        self.step, self.epoch, self.position = 0, 0, 0
        self.prefetch = prefetch
        # the batch being built ahead, and (epoch, position) before it was drawn: what a checkpoint keeps
        self._ahead: tuple[Any, tuple[int, int]] | None = None
        self._builder: Any = None  # its thread (one), while run() runs
        self.forward = self.model
        if self.world > 1:
            if not torch.distributed.is_initialized():
                torch.distributed.init_process_group("nccl" if cuda else "gloo")
            # No buffer broadcast: the model's only buffers are rotary tables derived from the
            # positions, which each rank grows to its own longest sequence; broadcasting rank 0's
            # (of another size) aborted every run with sequences over 256 tokens (issue 26).
            self.forward = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None, broadcast_buffers=False)
        if config.compile if config.compile is not None else cuda:
            self.forward = torch.compile(self.forward)
        torch.manual_seed(config.seed)

    # -- data order ---------------------------------------------------------------------------
    def _order(self, epoch: int) -> np.ndarray:
        if self.order is not None:
            return self.order(epoch)
        return np.random.default_rng([self.config.seed, epoch]).permutation(self.n_examples)

    def _next_indices(self) -> list[int]:
        """This process's share of the next global batch (ranks take interleaved slices)."""
        size = self.config.batch_size
        order = self._order(self.epoch)
        if self.position + size > len(order):
            self.epoch, self.position = self.epoch + 1, 0
            order = self._order(self.epoch)
        chunk = order[self.position:self.position + size]
        self.position += size
        return chunk[self.rank::self.world].tolist()

    # -- one step -----------------------------------------------------------------------------
    def train_step(self) -> float:
        self.model.train()
        batch = self._batch().to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr_at(self.step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        # real tokens (padding aside), rows, plan-only rows: reduced with the loss, one collective per step
        counts = [float(loss.detach()), float(batch.prompt_mask.sum() + batch.token_mask.sum()),
                  float(len(batch.tokens)), float(batch.plan_only.sum()) if batch.plan_only is not None else math.nan]
        totals = all_sums(counts) if self.world > 1 else counts
        if self.seen is not None:
            self.seen = {key: self.seen[key] + total for key, total in zip(SEEN, totals[1:])}
        return totals[0] / self.world

    def _batch(self) -> Batch:
        """This step's batch; with prefetch on, the next step's starts building in a thread now."""
        if self._ahead is None:
            batch = self._build(self._next_indices(), self.epoch)
        else:
            batch, self._ahead = self._ahead[0].result(), None
        if self._builder is not None and self.step + 1 < self.config.steps:
            drawn_from = (self.epoch, self.position)
            indices = self._next_indices()
            self._ahead = (self._builder.submit(self._build, indices, self.epoch), drawn_from)
        return batch

    def _build(self, indices: list[int], epoch: int) -> Batch:
        """One batch, pinned on a GPU: in the builder thread, so the step only starts its copy."""
        batch = self.make_batch(indices, epoch)
        return batch.pin_memory() if self.pin_memory else batch

    def _position(self) -> tuple[int, int]:
        """(epoch, position) after the steps taken: a batch drawn ahead is not taken yet."""
        return self._ahead[1] if self._ahead is not None else (self.epoch, self.position)

    def _loss(self, batch: Batch) -> torch.Tensor:
        if self.forward is self.model:
            return self.model.loss(batch.prompt, batch.prompt_mask, batch.tokens, batch.token_mask)
        # DDP / compiled wrappers go through forward(); the loss is computed the same way.
        logits = self.forward(batch.prompt, batch.prompt_mask, batch.tokens[:, :-1]).float()
        per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch.tokens[:, 1:], reduction="none")
        valid = batch.token_mask[:, 1:].float()
        return ((per_token * valid).sum(1) / valid.sum(1).clamp(min=1)).mean()

    def run(self, logger: Any = None, on_step: Callable[[int, float], None] | None = None,
            measure: Callable[[int, float], dict[str, float] | None] | None = None) -> list[float]:
        """Train to `config.steps` (resuming when a checkpoint exists); returns this call's losses
        (under DDP the mean over all processes: the global batch's loss).

        A logger with `restore(curve, seconds)` gets the earlier attempts' curve and seconds.
        measure(step, loss): metrics to log at that step (throughput, held-out evaluation), taken
        before the step's checkpoint so a resumed run's curve keeps them; on_step runs after it."""
        with training_claim(self.config.checkpoint_dir, self.world):
            return self._run(logger, on_step, measure)

    def _run(self, logger: Any, on_step: Callable[[int, float], None] | None,
             measure: Callable[[int, float], dict[str, float] | None] | None) -> list[float]:
        resumed = self.resume()
        if resumed and logger is not None and hasattr(logger, "restore"):
            logger.restore(self.history, self.earlier_seconds)
        if not resumed and self.trained_by is None:  # a checkpoint from before trained_by: unknown
            self.trained_by = getattr(logger, "run_identity", None)
        losses, self._started = [], time.perf_counter()
        bar = progress_bar(total=self.config.steps, initial=self.step, desc="train", disable=self.rank != 0)
        with stop_requests() as stops, self._building():
            while self.step < self.config.steps:
                loss = self.train_step()
                losses.append(loss)
                bar.update()
                bar.set_postfix(loss=f"{loss:.4f}")
                if self.step % self.config.log_every == 0:
                    seen = {k: v for k, v in (self.seen or {}).items() if math.isfinite(v)}
                    self._log(logger, {"train/loss": loss, "train/lr": self.config.lr_at(self.step - 1), **seen})
                if measure and (metrics := measure(self.step, loss)):
                    self._log(logger, metrics)
                if self.config.checkpoint_dir and (self.step % self.config.checkpoint_every == 0 or stops):
                    self.save()
                if stops:  # after the checkpoint: SLURM's grace period is for exactly this
                    bar.close()
                    raise Preempted(128 + stops[0])
                if on_step:
                    on_step(self.step, loss)
        bar.close()
        if self.config.checkpoint_dir:
            self.save()
        return losses

    @contextmanager
    def _building(self) -> Iterator[None]:
        """The batch-building thread for one run(); a batch built ahead and not taken is dropped."""
        if not self.prefetch:
            yield
            return
        from concurrent.futures import ThreadPoolExecutor

        self._builder = ThreadPoolExecutor(1, thread_name_prefix="batches")
        try:
            yield
        finally:
            if self._ahead is not None:
                self.epoch, self.position = self._ahead[1]
                self._ahead = None
            self._builder.shutdown(wait=True, cancel_futures=True)
            self._builder = None

    @property
    def seconds(self) -> float:
        """Training seconds over all attempts so far."""
        return self.earlier_seconds + time.perf_counter() - getattr(self, "_started", time.perf_counter())

    def _log(self, logger: Any, metrics: dict[str, float]) -> None:
        point = {**metrics, "train/seconds": self.seconds}
        self.history.append({"step": self.step, **point})
        if logger is not None and self.rank == 0:
            logger.log(point, step=self.step)

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return Path(self.config.checkpoint_dir) / "checkpoint.pt" if self.config.checkpoint_dir else None

    def save(self) -> None:
        if self.rank != 0 or self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "step": self.step, "epoch": self._position()[0], "position": self._position()[1],
                 "torch_rng": torch.get_rng_state(), "config": asdict(self.config),
                 "identity": self.identity, "history": self.history, "seconds": self.seconds,
                 "trained_by": self.trained_by, "seen": self.seen,
                 "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)  # a crash mid-save leaves the previous checkpoint

    def resume(self) -> bool:
        path = self.checkpoint_path
        if path is None or not path.exists() or self.step:
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state.get("identity") != self.identity:
            changed = differing_keys(state.get("identity") or {}, self.identity)
            raise ConfigError(f"checkpoint {path} was trained under other settings ({', '.join(changed[:6])}): "
                              "delete it, or give this run another model.train.checkpoint_dir")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.history, self.earlier_seconds = list(state["history"]), float(state["seconds"])
        self.trained_by = state.get("trained_by")
        self.seen = state.get("seen")  # None from a checkpoint written before the counts were kept
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return True
