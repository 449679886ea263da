"""Searchformer / Dualformer on planning tasks, for `python -m harness.train`.

    python -m harness.train task=maze_planning model=dualformer
    python -m harness.train -m experiment=table5_1_fast_mini        # Solution-Only vs Dualformer (fast)

`PlanningTask` holds the training examples and the test tasks (generated from the seed, or read
from a dataset written by scripts/gen_data.py) and judges answers with the task's own checks (a
maze path check, a Sokoban replay). `PlanningModel` trains the transformer with a trace-dropout
setting and answers each test task with `samples` responses per mode: Searchformer is the same
model with p0 = 1, Solution-Only with p4 = 1 (configs/dropout/).

Test sets draw one task per maze wall layout (task.test_tasks_per_layout) and training sets keep
~10% of each layout's tasks (task.train_keep_fraction), as upstream's id-ordered subsets do.
Training batches can be length-bucketed (model.batching, dualformer.batching; torch.compile is
then allowed), test prompts are decoded `prompt_batch` at a time with finished rows dropped, and
model.eval_every answers a held-out set during training (dualformer.monitor).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from dualformer.data import MODE_PREFIX, TraceDropout, check_dataset, load_examples, maze_vocabulary, sokoban_vocabulary, tokenize
from dualformer.metrics import Response, TaskResponses, plan_metrics
from dualformer.monitor import TrainingMonitor
from harness.api import ConfigError
from harness.progress import bar
from tasks.dualformer_paper import maze as maze_tasks
from tasks.dualformer_paper import sokoban as sokoban_tasks
from tasks.dualformer_paper.planning import Example

Answer = tuple[tuple[int, ...] | None, int]  # (plan cells or None when unreadable, trace tokens)
UNREADABLE = ("full_trace", "zero")
DECODE_PRECISIONS = ("auto", "bf16", "fp32")
SCORED_SPLITS = ("test", "validation")


def _take(examples: Iterable[Example], n: int, per_layout: int | None, keep_fraction: float,
          split: str) -> list[Example]:
    """The first `n` examples of a dataset split that pass the layout cap and the id-ordered keep.

    Keeping ids below a threshold is upstream's "first k ids after sorting" without the sort: a
    task's id is a hash, so the kept tasks are a uniform sample spread over the layouts.
    """
    counts: Counter[str] = Counter()
    taken = []
    for example in examples:
        if keep_fraction < 1 and int(example.id[:12], 16) >= keep_fraction * 16**12:
            continue
        if per_layout is not None and counts[example.task.layout_id] >= per_layout:
            continue
        counts[example.task.layout_id] += 1
        taken.append(example)
        if len(taken) == n:
            return taken
    raise ConfigError(f"the dataset's {split} split has only {len(taken)} tasks that pass "
                      f"tasks_per_layout={per_layout}, keep_fraction={keep_fraction}; {n} asked")


def train_config(fields: dict[str, Any]) -> Any:
    """A dualformer.train.TrainConfig from the model's `train` block; a bad field is a ConfigError.

    `batch_size` is the GLOBAL batch (upstream's 8 per GPU on 8 GPUs is 64): dualformer/train.py
    gives each of the world's processes batch_size / world of it (issue 13's Trainer).
    """
    from dualformer.train import TrainConfig

    try:
        return TrainConfig(**fields)
    except TypeError as error:
        raise ConfigError(f"model.train: {error}") from None


class PlanningTask:
    def __init__(self, seed: int, family: str = "maze", size: int | None = None, n_train: int = 2000,
                 n_test: int = 50, data_dir: str | None = None, deterministic: bool = False,
                 limit: int | None = None, test_tasks_per_layout: int | None = 1,
                 train_keep_fraction: float = 0.1, unreadable: str = "full_trace",
                 astar_ties: str = "uniform", n_eval: int = 0, sokoban: dict[str, Any] | None = None,
                 test_seed: int | None = None, n_validation: int = 0, scored_split: str = "test") -> None:
        """limit: score at most this many of the test tasks (smoke runs); None scores all.

        test_tasks_per_layout: at most this many test tasks share a wall layout (1: n_test
        distinct mazes; None: every valid task of a layout, in a row, as the generator draws them).
        train_keep_fraction: each valid training task of a layout is kept with this probability,
        so a training set spans layouts as upstream's (its first 100k of 1M tasks by hash id).
        Both are maze settings: every Sokoban level is its own layout.
        unreadable: how a response without a readable plan counts in the trace-length mean,
        "full_trace" (all its tokens, ours) or "zero" (upstream's notebooks); records say which.
        astar_ties: tie-breaking of the generating A* ("uniform", ours; "upstream": its coin flips).
        n_eval: held-out tasks for evaluation during training (dualformer.monitor), drawn after the
        test set from the test split's layouts and never scored as the test set.
        sokoban: level settings besides `size` (n_walls, n_boxes, max_trace_tokens; defaults:
        tasks.dualformer_paper.sokoban's paper setting, 7x7, 2 walls, 2 boxes, traces under 10,000 tokens).
        test_seed: draws the held-out tasks (test, eval and validation) from this seed instead of
        the run's, so every seed is tested on the same tasks and seed spread measures training
        alone; the training set is the run seed's either way. None: the run's seed draws them too.
        n_validation: tasks for choosing settings (e.g. the dropout p), drawn after the test and
        eval tasks on layouts disjoint from both; scored_split="validation" makes `test` score
        them (metrics named validation/...) so that the test set is not touched while choosing.
        """
        if family not in ("maze", "sokoban"):
            raise ConfigError(f"task.family must be maze or sokoban, got {family!r}")
        if n_train < 1 or n_test < 1:
            raise ConfigError(f"task.n_train and task.n_test must be >= 1, got {n_train}, {n_test}")
        if unreadable not in UNREADABLE:
            raise ConfigError(f"task.unreadable must be one of {UNREADABLE}, got {unreadable!r}")
        if scored_split not in SCORED_SPLITS:
            raise ConfigError(f"task.scored_split must be test or validation, got {scored_split!r}")
        if n_validation < 0 or (scored_split == "validation" and n_validation < 1):
            raise ConfigError(f"task.n_validation must be >= 0, and >= 1 to score the validation split; "
                              f"got {n_validation} with task.scored_split={scored_split}")
        if data_dir and test_seed is not None:
            raise ConfigError("task.test_seed draws generated test tasks; a dataset's (data_dir) test split is "
                              "already the same for every seed: set task.test_seed=null")
        self.scored_split = scored_split
        self.family = family
        self.size = size or (10 if family == "maze" else sokoban_tasks.SIZE)
        self.sokoban = dict(sokoban or {})
        if set(self.sokoban) - {"n_walls", "n_boxes", "max_trace_tokens"}:
            raise ConfigError(f"task.sokoban takes n_walls, n_boxes, max_trace_tokens; got {sorted(self.sokoban)}")
        self.limit, self.unreadable, self.ties = limit, unreadable, astar_ties
        self.test_tasks_per_layout, self.train_keep_fraction = test_tasks_per_layout, train_keep_fraction
        self.vocab = maze_vocabulary(self.size) if family == "maze" else sokoban_vocabulary(self.size)
        if data_dir:
            check_dataset(data_dir, family, self.size, n_train, n_test)
            # a maze setting (as in generation): a Sokoban level's id decides its split, so an id
            # threshold under test_fraction would keep no training level at all
            keep = train_keep_fraction if family == "maze" else 1.0
            self.train = _take(load_examples(data_dir, "train"), n_train, None, keep, "train")
            held = _take(load_examples(data_dir, "test"), n_test + n_eval + n_validation, test_tasks_per_layout,
                         1.0, "test")
            self.test_set, self.eval_set = held[:n_test], held[n_test:n_test + n_eval]
            self.validation_set = held[n_test + n_eval:]
        else:
            rng = np.random.default_rng(seed)
            self.train = list(self._generate(n_train, rng, "train", deterministic))
            held_rng = rng if test_seed is None else np.random.default_rng(test_seed)
            self.test_set = list(self._generate(n_test, held_rng, "test", deterministic))
            self.eval_set = list(self._generate(n_eval, held_rng, "test", deterministic)) if n_eval else []
            self.validation_set = self._draw_apart(n_validation, held_rng, deterministic)
        # A dataset's held-out tasks may share layouts (test_tasks_per_layout); generated validation
        # tasks already avoid the earlier layouts (_draw_apart), so for them this keeps every task.
        taken = {e.task.layout_id for e in self.test_set}
        self.eval_set = [e for e in self.eval_set if e.task.layout_id not in taken]
        taken |= {e.task.layout_id for e in self.eval_set}
        self.validation_set = [e for e in self.validation_set if e.task.layout_id not in taken]

    def _draw_apart(self, n: int, rng: np.random.Generator, deterministic: bool) -> list[Example]:
        """`n` held-out tasks on layouts of their own: the validation set must not share a wall
        layout with the test or eval tasks drawn before it, nor have fewer tasks than asked."""
        if not n:
            return []
        earlier = {e.task.layout_id for e in self.test_set + self.eval_set}
        drawn: list[Example] = []
        for example in self._generate(10 * n + 100, rng, "test", deterministic):  # a bound, not expected
            if example.task.layout_id not in earlier:
                drawn.append(example)
                if len(drawn) == n:
                    return drawn
        raise ConfigError(f"could not draw {n} validation tasks on layouts apart from the test tasks")

    def _generate(self, n: int, rng: np.random.Generator, split: str, deterministic: bool):
        if self.family == "maze":
            per_layout = self.test_tasks_per_layout if split == "test" else None
            keep = self.train_keep_fraction if split == "train" else 1.0
            return maze_tasks.generate(self.size, n, rng, split=split, deterministic=deterministic,
                                       tasks_per_layout=per_layout, keep_fraction=keep, ties=self.ties)
        return sokoban_tasks.generate(n, rng, split=split, ties=self.ties, size=self.size, **self.sokoban)

    def _judge(self, example: Example, answers: list[Answer]) -> TaskResponses:
        responses = [Response(plan=plan or (), correct=bool(plan) and self.is_correct(example, plan),
                              plan_length=len(plan or ()), readable=plan is not None,
                              trace_tokens=0 if plan is None and self.unreadable == "zero" else trace)
                     for plan, trace in answers]
        return TaskResponses(len(example.plan), responses)

    def is_correct(self, example: Example, plan: tuple[int, ...]) -> bool:
        if self.family == "maze":
            return not maze_tasks.plan_problems(example.task, plan)
        return sokoban_tasks.is_solution(example.task, plan)

    def test_examples(self) -> list[Example]:
        """The examples `test` scores, in its order (harness.ranks splits them over DDP ranks): the
        test set, or the validation set while settings are chosen (task.scored_split)."""
        scored = self.validation_set if self.scored_split == "validation" else self.test_set
        return scored[:self.limit]

    def test(self, solve: Callable[[Example], dict[str, list[Answer]]]) -> dict[str, float]:
        """Per mode the model answers in: k-Solved / k-Optimal, SWC, diversity, trace length.
        Every response, with its verdict, is kept in `test_samples` (beside the record: harness.samples)."""
        self.test_samples = []
        return self.score(self.test_examples(), solve, record_samples=True)

    def score(self, examples: list[Example], solve: Callable[[Example], dict[str, list[Answer]]],
              record_samples: bool = False) -> dict[str, float]:
        """The metrics of `test` over any list of this task's examples (the held-out set too)."""
        judged: dict[str, list[TaskResponses]] = {}
        model = getattr(solve, "__self__", None)  # a PlanningModel answers several prompts per call
        batched, size = getattr(model, "solve_batch", None), int(getattr(model, "prompt_batch", 1))
        # the test set's sampling can take an hour: log lines where bars are off (not the held-out set's)
        with bar(total=len(examples), desc="test", log_every_s=60 if record_samples else None) as progress:
            for start in range(0, len(examples), size if batched else 1):
                chunk = examples[start:start + (size if batched else 1)]
                for example, answered in zip(chunk, batched(chunk) if batched else [solve(chunk[0])]):
                    for mode, answers in answered.items():
                        judged.setdefault(mode, []).append(self._judge(example, answers))
                        if record_samples:
                            self.test_samples.append({"id": example.id, "mode": mode,
                                                      "optimal_length": len(example.plan),
                                                      "responses": [asdict(r) for r in judged[mode][-1].responses]})
                progress.update(len(chunk))
        return {f"{mode}/{k}": v for mode, tasks in judged.items() for k, v in plan_metrics(tasks).items()}


@dataclass
class PlanningModel:
    """A transformer trained with one trace-dropout setting, answering in the given modes."""

    dropout: TraceDropout
    preset: str = "tiny"
    modes: list[str] = field(default_factory=lambda: ["auto"])
    samples: int = 64
    temperature: float = 1.0
    max_len: int | None = None  # None: response_limit() from the training set
    prompt_batch: int = 8       # test prompts decoded together (each with `samples` rows)
    seed: int = 0
    train: dict[str, Any] = field(default_factory=dict)  # dualformer.train.TrainConfig fields
    architecture: dict[str, Any] = field(default_factory=dict)  # other ModelConfig fields (init, ...)
    batching: str = "random"    # "bucketed": batches of similar lengths (dualformer.batching)
    pad_multiple: int = 32      # bucketed batches pad to a multiple of this (few shapes to compile)
    eval_every: int = 0         # > 0: answer task.eval_set every this many steps (dualformer.monitor)
    eval_samples: int = 4       # responses per held-out task and mode in those evaluations
    decode_precision: str = "auto"  # bf16 | fp32 | auto: bf16 on a GPU that has it (issue 26)

    def __post_init__(self) -> None:
        train_config({"seed": self.seed, **self.train})  # a bad step count is refused before any work
        if self.decode_precision not in DECODE_PRECISIONS:
            raise ConfigError(f"model.decode_precision must be one of {DECODE_PRECISIONS}, got {self.decode_precision!r}")

    def decode_bf16(self, device: Any) -> bool:
        """Whether sampling on `device` runs under bf16 autocast. auto: on CUDA where the card has
        bf16 (Ampere on); on CPU fp32, where bf16 matmuls are emulated and slower."""
        if self.decode_precision != "auto":
            return self.decode_precision == "bf16"
        import torch

        return device.type == "cuda" and torch.cuda.is_bf16_supported()

    @property
    def decoding(self) -> dict[str, str] | None:
        """Which precision decoded, on which device (the record's provenance): None before fit."""
        if getattr(self, "model", None) is None:
            return None
        device = next(self.model.parameters()).device
        return {"precision": "bf16" if self.decode_bf16(device) else "fp32", "device": device.type}

    @property
    def total_steps(self) -> int | None:
        """Training steps of the whole fit (the run's log lines count the time left against it)."""
        return self.train.get("steps")

    @property
    def trained_by(self) -> dict[str, str] | None:
        """The run (git sha, config hash) that trained the weights answering now (a checkpoint's)."""
        return getattr(getattr(self, "trainer", None), "trained_by", None)

    def fit(self, task: PlanningTask, logger: Any) -> None:
        import torch

        from dualformer.model import Transformer, preset
        from dualformer.train import Trainer, fingerprint

        unknown = set(self.modes) - set(MODE_PREFIX)
        if unknown:
            raise ConfigError(f"model.modes: unknown {sorted(unknown)}; choose from {sorted(MODE_PREFIX)}")
        self.task, self.pad = task, len(task.vocab)  # one extra id for padding, never a target
        self.sequences = [tokenize(e) for e in task.train]
        torch.manual_seed(self.seed)
        try:
            config = preset(self.preset, len(task.vocab) + 1, **self.architecture)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"model.preset / model.architecture: {error}") from None
        self.model = Transformer(config)
        if self.batching not in ("random", "bucketed"):
            raise ConfigError(f"model.batching must be random or bucketed, got {self.batching!r}")
        config = train_config({"seed": self.seed, **self.train, "compile": self._compile_setting()})
        order = None
        if self.batching == "bucketed":
            from dualformer.batching import BucketedOrder
            order = BucketedOrder(self._epoch_lengths, config.batch_size, self.seed)  # the global batch
        monitor = TrainingMonitor(self, task, logger, self.eval_every, self.eval_samples, config.log_every)
        # The checkpoint's identity: these examples under this dropout (harness: issue 13).
        identity = {"data": fingerprint(e.id for e in task.train), "dropout": repr(self.dropout)}
        self.trainer = Trainer(self.model, config, monitor.counting(self._batch), len(self.sequences),
                               identity=identity, order=order)
        self.trainer.run(logger, measure=monitor)

    def _compile_setting(self) -> bool | None:
        """torch.compile only over bucketed (padded to a multiple) shapes: with random batches
        every width is new and recompiling costs more than it saves. None: the trainer's default."""
        if self.train.get("compile") is not None:  # the typed schema always holds the key (None: auto)
            return self.train["compile"]
        return None if self.batching == "bucketed" else False

    def _decoder(self, i: int, epoch: int) -> list[str]:
        """Example i's decoder tokens in `epoch`: dropout drawn from (seed, epoch, index)."""
        rng = np.random.default_rng([self.seed, epoch, i])
        return self.dropout(self.sequences[i], rng, key=self.task.train[i].id)[1]

    def _epoch_lengths(self, epoch: int) -> np.ndarray:
        return np.array([len(self._decoder(i, epoch)) for i in range(len(self.sequences))])

    def _batch(self, indices: list[int], epoch: int):
        """Dropout drawn per example per epoch from (seed, epoch, index): a resumed run repeats it."""
        from dualformer.train import Batch

        prompts = [self.task.vocab.encode(self.sequences[i].encoder_tokens()) for i in indices]
        targets = [self.task.vocab.encode(self._decoder(i, epoch)) for i in indices]
        multiple = self.pad_multiple if self.batching == "bucketed" else 1
        return Batch(*self._pad(prompts), *self._pad(targets, multiple))

    def _pad(self, rows: list[list[int]], multiple: int = 1):
        import torch

        from dualformer.batching import pad_width

        width = pad_width(max(map(len, rows)), multiple)
        ids = torch.tensor([r + [self.pad] * (width - len(r)) for r in rows])
        return ids, ids != self.pad

    def response_limit(self) -> int:
        """max_len, or when it is None 1.5x the longest full training response (bos..eos): a model
        that never writes eos stops near what the task can need, not after 10,000 tokens."""
        if self.max_len is not None:
            return self.max_len
        sequences = getattr(self, "sequences", None) or [tokenize(e) for e in self.task.train]
        return int(1.5 * max(len(s.decoder_tokens()) for s in sequences)) + 1

    def solve(self, example: Example) -> dict[str, list[Answer]]:
        return self.solve_batch([example])[0]

    def solve_batch(self, examples: list[Example]) -> list[dict[str, list[Answer]]]:
        """`samples` answers per mode for several prompts, decoded together (padded prompts)."""
        from dualformer.sample import prompt_seed, sample

        vocab = self.task.vocab
        device = next(self.model.parameters()).device
        prompts = [vocab.encode(tokenize(e).encoder_tokens()) for e in examples]
        prompt, mask = (t.to(device) for t in self._pad(prompts))
        bos, eos = vocab.encode(["bos", "eos"])
        answers: list[dict[str, list[Answer]]] = [{} for _ in examples]
        for mode in self.modes:
            # each prompt its own random stream: the same samples alone, batched or split over ranks
            seeds = [prompt_seed(self.seed, e.id, mode) for e in examples]
            out = sample(self.model, prompt, mask, bos, eos, prefix=vocab.encode(MODE_PREFIX[mode][1:]),
                         n=self.samples, temperature=self.temperature, max_len=self.response_limit(), seeds=seeds,
                         bf16=self.decode_bf16(device))
            for mine, tokens in zip(answers, out.tokens):
                mine[mode] = [self._read(t) for t in tokens]
        return answers

    def _read(self, tokens: list[int]) -> Answer:
        """(plan cells, trace tokens) from a decoded response; plan None when it is malformed."""
        words = self.task.vocab.decode(t for t in tokens if t != self.pad)
        trace = words.index("plan") if "plan" in words else len(words)
        plan_words = words[trace:]
        if not plan_words or len(plan_words) % 3:
            return None, trace
        cells = []
        for i in range(0, len(plan_words), 3):
            word, x, y = plan_words[i:i + 3]
            if word != "plan" or not (x.isdigit() and y.isdigit()):
                return None, trace
            cells.append(int(x) + int(y) * self.task.size)
        return tuple(cells), trace
