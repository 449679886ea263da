"""Planning data as tokens: vocabularies, tokenizers, trace dropout, and the dataset reader.

    import numpy as np
    from dualformer.data import TraceDropout, load_examples, maze_vocabulary, tokenize
    vocab = maze_vocabulary(30)                             # one vocabulary per task family
    for example in load_examples("data/maze30", "train"):   # written by scripts/gen_data.py
        seq = tokenize(example)                              # prompt, trace clauses, plan
        encoder_ids = vocab.encode(seq.encoder_tokens())     # bos start x y goal x y wall x y ... eos
        level, decoder = TraceDropout(p=(0.5, 0.2, 0.1, 0.1, 0.1))(seq, np.random.default_rng(0))
        decoder_ids = vocab.encode(decoder)                  # bos create x y c3 c5 ... plan x y ... eos

Token layouts (facts: specs/dualformer.md sections 1.3, 1.4, 4.3):
- maze prompt `start x y goal x y` then `wall x y` per wall in row-major order (y, then x);
  trace clause `create|close x y c<g> c<h>`; plan `plan x y` per cell from start to goal.
- Sokoban prompt `worker x y`, `box x y` (boxes off docks), `dock x y` (open docks), `wall x y`
  (border included), each group sorted by (x, y); trace clause `create|close worker x y`, then
  `box x y` per box off a dock, then `c<g> c<h>`; plan `plan x y` per worker position.
- Encoder input `bos prompt eos`; decoder target `bos trace plan eos`. Modes need no new token:
  the first decoder token after `bos` is the switch (`create`: slow, `plan`: fast, none: auto),
  see MODE_PREFIX.
- Vocabulary: `bos`, `eos` (ids 0, 1), then the sorted rest: coordinates `0`..`size-1`, cost
  tokens, the words. Mazes: costs `c0`..`c{size^2-1}` (118 tokens at 10x10, 938 at 30x30, as
  upstream). Sokoban: `c0`..`c{max_cost}` instead of upstream's 40,000 mostly unused ones.

Trace dropout (Dualformer): level 0 keeps the trace, 1 drops every close clause, 2 also the two
cost tokens of every create clause, 3 also 30% of the create clauses (chosen uniformly), 4 the
whole trace; a level is drawn per example, each time it is loaded, from Cat(p0..p4). Searchformer
is p0 = 1, Solution-Only p4 = 1 (configs/dropout/). `upstream=True` reproduces what the released
code does instead (specs/dualformer.md section 4.2): mazes' level 3 keeps the costs and drops a
uniformly drawn 10..40 percent of the creates; Sokoban's level 3 drops each create with
probability 0.3, and a Sokoban example's level and drop pattern are drawn once (from `seed` and
the example's ID) and reused every epoch.
"""
from __future__ import annotations

import functools
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from harness.api import ConfigError
from tasks.dualformer_paper.astar import KIND_NAMES, Event
from tasks.dualformer_paper.maze import Maze
from tasks.dualformer_paper.planning import Example
from tasks.dualformer_paper.sokoban import Board, SokobanLevel

BOS, EOS = "bos", "eos"
MODE_PREFIX = {"slow": (BOS, "create"), "fast": (BOS, "plan"), "auto": (BOS,)}
MAZE_WORDS = ("start", "goal", "wall", "create", "close", "plan")
SOKOBAN_WORDS = ("worker", "box", "dock", "wall", "create", "close", "plan")
SOKOBAN_MAX_COST = 99  # the largest g in 2,000 uncapped 7x7 levels was 36, the largest h 12
MANIFEST = "manifest.json"
Clause = tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings <-> ids; `bos` is 0 and `eos` is 1."""

    tokens: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {t: i for i, t in enumerate(self.tokens)})
        assert self.tokens[:2] == (BOS, EOS) and len(self.index) == len(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        try:
            return [self.index[t] for t in tokens]
        except KeyError as missing:
            raise ValueError(f"token {missing} is not in the vocabulary ({len(self)} tokens)") from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]


def _vocabulary(tokens: Iterable[str]) -> Vocabulary:
    return Vocabulary((BOS, EOS, *sorted(set(tokens))))


def maze_vocabulary(size: int = 30) -> Vocabulary:
    """Covers every maze up to size x size (size 30 serves the whole 10..30 family)."""
    return _vocabulary([*map(str, range(size)), *(f"c{i}" for i in range(size * size)), *MAZE_WORDS])


def sokoban_vocabulary(size: int = 7, max_cost: int = SOKOBAN_MAX_COST) -> Vocabulary:
    return _vocabulary([*map(str, range(size)), *(f"c{i}" for i in range(max_cost + 1)), *SOKOBAN_WORDS])


@dataclass(frozen=True)
class TokenSequence:
    """One example as tokens: the prompt, the trace as clauses (so dropout can cut them), the plan."""

    prompt: tuple[str, ...]
    trace: tuple[Clause, ...]
    plan: tuple[str, ...]

    def encoder_tokens(self) -> list[str]:
        return [BOS, *self.prompt, EOS]

    def decoder_tokens(self, trace: Sequence[Clause] | None = None) -> list[str]:
        """`bos`, the trace (this one's, or a dropped-out version), the plan, `eos`."""
        clauses = self.trace if trace is None else trace
        return [BOS, *(t for clause in clauses for t in clause), *self.plan, EOS]

    @property
    def trace_length(self) -> int:
        return sum(map(len, self.trace))


@functools.lru_cache(maxsize=16)
def _names(size: int) -> tuple[list[str], list[str], list[str]]:
    """x and y strings of every cell, and cost strings up to size^2 (immutable use only)."""
    cells = range(size * size)
    return [str(c % size) for c in cells], [str(c // size) for c in cells], [f"c{i}" for i in cells]


def _xy(cells: Iterable[int], size: int) -> list[tuple[int, int]]:
    return [(c % size, c // size) for c in cells]


def _group(word: str, points: Iterable[tuple[int, int]]) -> list[str]:
    return [t for x, y in points for t in (word, str(x), str(y))]


def tokenize_maze(maze: Maze, plan: Sequence[int], events: Sequence[Event]) -> TokenSequence:
    n = maze.size
    prompt = _group("start", _xy([maze.start], n)) + _group("goal", _xy([maze.goal], n))
    xs, ys, costs = _names(n)
    prompt += [t for c in sorted(maze.walls) for t in ("wall", xs[c], ys[c])]  # row-major: y, then x
    names = ("create", "close")
    trace = tuple((names[k], xs[c], ys[c], costs[g], costs[h]) for k, c, g, h in events)
    return TokenSequence(tuple(prompt), trace, tuple(t for c in plan for t in ("plan", xs[c], ys[c])))


def tokenize_sokoban(level: SokobanLevel, plan: Sequence[int], events: Sequence[Event]) -> TokenSequence:
    board, n = Board(level), level.size
    docks = set(level.docks)
    prompt = _group("worker", _xy([level.worker], n))
    prompt += _group("box", sorted(_xy([b for b in level.boxes if b not in docks], n)))
    prompt += _group("dock", sorted(_xy([d for d in level.docks if d not in level.boxes], n)))
    prompt += _group("wall", sorted(_xy(level.walls, n)))
    trace = []
    for kind, state, g, h in events:
        worker = state % board.cells
        boxes = sorted(_xy(board.undocked(state), n))
        trace.append((KIND_NAMES[kind], *_group("worker", _xy([worker], n)), *_group("box", boxes),
                      f"c{g}", f"c{h}"))
    return TokenSequence(tuple(prompt), tuple(trace), tuple(_group("plan", _xy(board.worker_path(plan), n))))


def tokenize(example: Example) -> TokenSequence:
    task = example.task
    if isinstance(task, Maze):
        return tokenize_maze(task, example.plan, example.events)
    if isinstance(task, SokobanLevel):
        return tokenize_sokoban(task, example.plan, example.events)
    raise TypeError(f"no tokenizer for {type(task).__name__}")


def _strip(tokens: Sequence[str]) -> list[str]:
    if len(tokens) < 2 or tokens[0] != BOS or tokens[-1] != EOS:
        raise ValueError("a sequence must start with bos and end with eos")
    return list(tokens[1:-1])


def _points(tokens: Sequence[str], words: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """`word x y word x y ...` -> {word: [(x, y), ...]}, checking the words and the triples."""
    if len(tokens) % 3:
        raise ValueError(f"{len(tokens)} tokens do not split into `word x y` triples")
    out: dict[str, list[tuple[int, int]]] = {w: [] for w in words}
    for i in range(0, len(tokens), 3):
        if tokens[i] not in out:
            raise ValueError(f"unexpected token {tokens[i]!r} at {i}")
        out[tokens[i]].append((int(tokens[i + 1]), int(tokens[i + 2])))
    return out


def split_decoder(decoder: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """`bos trace plan eos` -> (trace clauses, plan tokens); clauses start at create / close."""
    tokens = _strip(decoder)
    cut = tokens.index("plan") if "plan" in tokens else len(tokens)
    clauses: list[list[str]] = []
    for t in tokens[:cut]:
        if t in KIND_NAMES:
            clauses.append([t])
        elif not clauses:
            raise ValueError(f"the trace starts with {t!r}, not create / close")
        else:
            clauses[-1].append(t)
    return clauses, tokens[cut:]


def _cost(token: str) -> int:
    if not (token.startswith("c") and token[1:].isdigit()):
        raise ValueError(f"{token!r} is not a cost token")
    return int(token[1:])


def parse_maze(encoder: Sequence[str], decoder: Sequence[str], size: int
               ) -> tuple[Maze, list[int], list[Event]]:
    """Tokens back to (maze, plan cells, events): the inverse of tokenize_maze."""
    def cell(x: int, y: int) -> int:
        return x + y * size
    got = _points(_strip(encoder), ("start", "goal", "wall"))
    if len(got["start"]) != 1 or len(got["goal"]) != 1:
        raise ValueError("a maze prompt has one start and one goal")
    walls = tuple(sorted(cell(*p) for p in got["wall"]))
    maze = Maze(size, walls, cell(*got["start"][0]), cell(*got["goal"][0]))
    clauses, plan = split_decoder(decoder)
    events = []
    for c in clauses:
        if len(c) != 5:
            raise ValueError(f"a maze clause has 5 tokens: {c}")
        events.append((KIND_NAMES.index(c[0]), cell(int(c[1]), int(c[2])), _cost(c[3]), _cost(c[4])))
    return maze, [cell(*p) for p in _points(plan, ("plan",))["plan"]], events


def parse_sokoban(encoder: Sequence[str], decoder: Sequence[str], size: int = 7
                  ) -> tuple[SokobanLevel, list[int], list[tuple[int, int, tuple[int, ...], int, int]]]:
    """Tokens back to (start level, worker path, clauses as (kind, worker, boxes off docks, g, h)).

    A clause names only the boxes off docks, so which dock holds a docked box is not in the
    tokens (upstream's format): the clauses come back in that projected form.
    """
    def cell(p: tuple[int, int]) -> int:
        return p[0] + p[1] * size
    got = _points(_strip(encoder), ("worker", "box", "dock", "wall"))
    level = SokobanLevel(size, tuple(sorted(map(cell, got["wall"]))), tuple(sorted(map(cell, got["box"]))),
                         tuple(sorted(map(cell, got["dock"]))), cell(got["worker"][0]))
    clauses, plan = split_decoder(decoder)
    out = []
    for c in clauses:
        points = _points(c[1:-2], ("worker", "box"))
        out.append((KIND_NAMES.index(c[0]), cell(points["worker"][0]),
                    tuple(sorted(map(cell, points["box"]))), _cost(c[-2]), _cost(c[-1])))
    return level, [cell(p) for p in _points(plan, ("plan",))["plan"]], out


@dataclass(frozen=True)
class TraceDropout:
    """Dualformer's structured trace dropout; `p` = (p0, p1, p2, p3, p4) over the levels 0..4."""

    p: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0)
    create_fraction: float = 0.3
    upstream: bool = False  # the released code's variant (module docstring) instead of the paper's
    family: str = "maze"  # which upstream variant: "maze" or "sokoban"
    seed: int = 0  # only for upstream Sokoban, whose draw is frozen per example

    def __post_init__(self) -> None:
        p = tuple(float(v) for v in self.p)
        object.__setattr__(self, "p", p)
        if len(p) != 5 or min(p) < 0 or abs(sum(p) - 1) > 1e-6:
            raise ConfigError(f"dropout.p must be 5 non-negative probabilities summing to 1, got {list(p)}")
        if not 0 <= self.create_fraction <= 1:
            raise ConfigError(f"dropout.create_fraction must be in [0, 1], got {self.create_fraction}")
        if self.family not in ("maze", "sokoban"):
            raise ConfigError(f"dropout.family must be maze or sokoban, got {self.family!r}")

    def draw_level(self, rng: np.random.Generator) -> int:
        u, total = rng.random(), 0.0
        for level, p in enumerate(self.p[:4]):
            total += p
            if u < total:
                return level
        return 4 if self.p[4] > 0 else max(i for i, p in enumerate(self.p) if p > 0)

    def apply(self, trace: Sequence[Clause], level: int, rng: np.random.Generator) -> list[Clause]:
        """The clauses that `level` keeps, in their order."""
        if level == 0:
            return list(trace)
        if level == 4:
            return []
        creates = [c for c in trace if c[0] == "create"]
        if level == 3 and self.upstream and self.family == "maze":  # costs kept, 10-40% dropped
            drop = len(creates) * int(rng.integers(10, 41)) // 100
            gone = set(rng.choice(len(creates), drop, replace=False).tolist())
            return [c for i, c in enumerate(creates) if i not in gone]
        if level >= 2:
            creates = [c[:-2] for c in creates]
        if level == 3 and self.upstream:  # Sokoban: each create dropped independently
            return [c for c, u in zip(creates, rng.random(len(creates))) if u > self.create_fraction]
        if level == 3:
            drop = int(np.floor(self.create_fraction * len(creates) + 0.5))
            gone = set(rng.choice(len(creates), drop, replace=False).tolist())
            creates = [c for i, c in enumerate(creates) if i not in gone]
        return creates

    def __call__(self, seq: TokenSequence, rng: np.random.Generator, key: str | None = None
                 ) -> tuple[int, list[str]]:
        """(level, decoder tokens) for one example; `key` (its ID) is needed by upstream Sokoban."""
        if self.upstream and self.family == "sokoban":
            if key is None:
                raise ValueError("upstream Sokoban dropout is frozen per example: pass key=example.id")
            rng = np.random.default_rng([self.seed, int(key, 16)])
        level = self.draw_level(rng)
        return level, seq.decoder_tokens(self.apply(seq.trace, level, rng))


def plan_only_rows(tokens, vocab: Vocabulary):
    """Per row of a (batch, length) tensor of decoder ids starting with bos: True where the plan
    follows bos directly, with no trace (dropout level 4, or a kept response that took the fast path)."""
    return tokens[:, 1] == vocab.encode(["plan"])[0]


def task_type(family: str) -> type:
    return {"maze": Maze, "sokoban": SokobanLevel}[family]


def check_dataset(directory: str | Path, family: str, size: int, n_train: int, n_test: int) -> None:
    """Before any training: the dataset's manifest must say it is the task's family and size and
    holds as many examples as the task asks for (a 7x7 dataset is never trained on as maze10)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise ConfigError(f"task.data_dir: {directory} has no {MANIFEST} (not a finished scripts/gen_data.py "
                          "dataset: make it once with scripts/gen_data.py, see the README's 'Scaling out')")
    settings = json.loads(path.read_text())["settings"]
    problems = []
    if settings["family"] != family:
        problems.append(f"family {settings['family']}, not {family}")
    if family == "maze" and settings["size"] != size:
        problems.append(f"size {settings['size']}, not {size}")
    for split, wanted in (("train", n_train), ("test", n_test)):
        if settings[split] < wanted:
            problems.append(f"{settings[split]} {split} examples, not {wanted}")
    if problems:
        raise ConfigError(f"task.data_dir: {directory} holds {'; '.join(problems)} (its manifest.json)")


def load_examples(directory: str | Path, split: str, unique: bool = True) -> Iterator[Example]:
    """The examples of one split of a dataset written by scripts/gen_data.py, in shard order.

    unique: skip a task ID already seen (different shards can draw the same Sokoban level).
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"{directory} has no {MANIFEST}: is the dataset finished?")
    manifest = json.loads(manifest_path.read_text())
    kind, seen = task_type(manifest["settings"]["family"]), set()
    for shard in manifest["shards"]:
        if shard["split"] != split:
            continue
        with gzip.open(directory / shard["file"], "rt") as lines:
            for line in lines:
                record = json.loads(line)
                if unique and record["id"] in seen:
                    continue
                seen.add(record["id"])
                yield Example.from_record(record, kind)
