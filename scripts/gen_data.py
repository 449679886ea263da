"""Write maze / Sokoban datasets (tasks, optimal plans, A* traces) to disk: sharded, resumable.

    python scripts/gen_data.py maze --size 30 --train 1000000 --test 100000 --out data/maze30
    python scripts/gen_data.py maze --size 10 --deterministic --train 1000000 --test 100000 \
        --out data/maze10-det
    python scripts/gen_data.py sokoban --train 100000 --test 10000 --out data/sokoban
    python scripts/gen_data.py maze --size 10 --train 2000 --test 200 --out /tmp/maze10 --shard-size 500

Split over machines or array tasks (one folder they all see), then seal once:
    python scripts/gen_data.py maze --size 30 --train 1000000 --test 100000 --out data/maze30 --shard 3/8
    python scripts/gen_data.py maze --size 30 --train 1000000 --test 100000 --out data/maze30 --seal
    As a SLURM array job (each task takes its part from SLURM's variables; the task that finds
    every shard written seals the manifest, so no --seal step is needed):
    sbatch --array=0-15 --cpus-per-task=8 --wrap "python scripts/gen_data.py maze --size 30 \
        --train 1000000 --test 100000 --out data/maze30 --workers 8 --slurm-array"

Options: --seed (default 0), --workers (processes, default: all cores), --shard-size (examples per
shard, default 10000), --test-fraction (share of layouts that belong to the test split, default
0.1), --attempts (maze: start/goal draws per layout, 100), --max-trace-tokens (Sokoban: keep traces
shorter than this, default 10000; 0 = no cap), --walls / --boxes (Sokoban: 2 and 2), --no-progress, --shard i/n (write only shards i, i + n, ...: no
manifest), --seal (write nothing new: check every shard against its sha256, then the manifest),
--slurm-array (--shard from the SLURM array task's index and count; the last task to finish seals).

What lands in --out:
    settings.json            what was asked; rerunning with other settings is refused
    train-00000.jsonl.gz     a shard: one example per line (tasks.dualformer_paper.planning.Example.to_record)
    train-00000.json         the shard's count, sha256, task IDs and stats, written after it
    manifest.json            written last: settings, seed, generator version, examples and
                             distinct task IDs per split, trace statistics, every shard with
                             its sha256, and one sha256 over them all (`dataset_sha256`)

Each shard is a pure function of (settings, seed, split, shard index), so the files are the same
whatever --workers is. A shard is written to a temporary file and renamed, its .json follows the
same way, and a shard counts as done once its .json exists: rerunning the same command skips
finished shards, so a killed run resumes where it stopped. Read a dataset with
`dualformer.data.load_examples(out, "train")`.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dualformer.data import MANIFEST, SOKOBAN_MAX_COST, maze_vocabulary, sokoban_vocabulary  # noqa: E402
from tasks.dualformer_paper import maze, sokoban  # noqa: E402
from tasks.dualformer_paper.planning import GENERATOR_VERSION, SPLITS, Example  # noqa: E402

SETTINGS = "settings.json"


@dataclass(frozen=True)
class Settings:
    """Everything that decides the content of a dataset."""

    family: str
    size: int
    train: int
    test: int
    seed: int = 0
    shard_size: int = 10_000
    test_fraction: float = 0.1
    deterministic: bool = False
    attempts: int | None = None  # maze only
    max_trace_tokens: int | None = None  # Sokoban only; 0: no cap
    walls: int | None = None  # Sokoban only
    boxes: int | None = None  # Sokoban only
    generator_version: int = GENERATOR_VERSION

    def shards(self) -> list[tuple[str, int, int]]:
        """(split, index, count) of every shard."""
        out = []
        for split in SPLITS:
            total = self.train if split == "train" else self.test
            out += [(split, i, min(self.shard_size, total - start))
                    for i, start in enumerate(range(0, total, self.shard_size))]
        return out


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}"


def trace_tokens(example: Example, board: sokoban.Board | None) -> int:
    """Trace length in tokens without tokenizing: 5 per maze clause, 6 + 3 per open box in Sokoban."""
    if board is None:
        return 5 * len(example.events)
    return sum(board.event_tokens(state) for _, state, _, _ in example.events)


def generate(settings: Settings, split: str, index: int, count: int) -> list[Example]:
    seed = np.random.SeedSequence([settings.seed, SPLITS.index(split), index])
    rng = np.random.default_rng(seed)
    if settings.family == "maze":
        stream = maze.generate(settings.size, count, rng, split, settings.test_fraction,
                               settings.attempts or maze.ATTEMPTS_PER_LAYOUT, settings.deterministic)
    else:
        stream = sokoban.generate(count, rng, split, settings.test_fraction,
                                  settings.max_trace_tokens or None, settings.size,
                                  settings.walls or 0, settings.boxes or sokoban.N_BOXES)
    return list(stream)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_shard(job: tuple[Settings, str, int, int, str]) -> dict[str, Any]:
    """Generate one shard and write it, then its summary; returns the summary."""
    settings, split, index, count, out = job
    started = time.perf_counter()
    examples = generate(settings, split, index, count)
    buffer = io.BytesIO()
    # mtime 0: the same bytes every run; level 4: 1.4 KB per 30x30 task at a third of level 9's time
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=4) as stream:
        for example in examples:
            stream.write((json.dumps(example.to_record(), separators=(",", ":")) + "\n").encode())
    data = buffer.getvalue()
    name = shard_name(split, index)
    _write_atomic(Path(out) / f"{name}.jsonl.gz", data)
    tokens, plans, costs = [], [], [0]
    for example in examples:
        board = sokoban.Board(example.task) if settings.family == "sokoban" else None
        tokens.append(trace_tokens(example, board))
        plans.append(len(example.plan))
        costs.append(max(max(g, h) for _, _, g, h in example.events))
    summary = {"file": f"{name}.jsonl.gz", "split": split, "index": index, "count": len(examples),
               "sha256": hashlib.sha256(data).hexdigest(), "seconds": time.perf_counter() - started,
               "trace_tokens_sum": int(sum(tokens)), "trace_tokens_max": int(max(tokens, default=0)),
               "plan_nodes_sum": int(sum(plans)), "max_cost": int(max(costs)),
               "ids": [example.id for example in examples]}
    _write_atomic(Path(out) / f"{name}.json", json.dumps(summary).encode())
    return summary


def _error(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, like every other entry point here
        _error(message)


def parse_args(argv: list[str] | None) -> tuple[Settings, Path, int, bool]:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("family", choices=["maze", "sokoban"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, required=True)
    parser.add_argument("--test", type=int, required=True)
    parser.add_argument("--size", type=int, help="maze: 10..30 in the papers; Sokoban: 7 (default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--deterministic", action="store_true", help="maze: deterministic A*")
    parser.add_argument("--attempts", type=int, default=maze.ATTEMPTS_PER_LAYOUT)
    parser.add_argument("--max-trace-tokens", type=int, default=sokoban.MAX_TRACE_TOKENS)
    parser.add_argument("--walls", type=int, default=sokoban.N_WALLS)
    parser.add_argument("--boxes", type=int, default=sokoban.N_BOXES)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--shard", default=None, help="i/n: this machine writes shards i, i+n, ...")
    parser.add_argument("--seal", action="store_true", help="check every shard, then write the manifest")
    parser.add_argument("--slurm-array", action="store_true",
                        help="one task of a SLURM array job: --shard from SLURM's variables, sealed by the last task")
    a = parser.parse_args(argv)
    size = a.size if a.size is not None else (30 if a.family == "maze" else sokoban.SIZE)
    checks = [
        (a.train < 0 or a.test < 0, f"--train and --test must be >= 0, got {a.train} and {a.test}"),
        (a.train + a.test == 0, "nothing to generate: --train and --test are both 0"),
        (a.family == "maze" and size < 2, f"--size must be >= 2 for mazes, got {size}"),
        (a.family == "sokoban" and size < 5, f"--size must be >= 5 for Sokoban, got {size}"),
        (a.workers < 1, f"--workers must be >= 1, got {a.workers}"),
        (a.shard_size < 1, f"--shard-size must be >= 1, got {a.shard_size}"),
        (not 0 < a.test_fraction < 1, f"--test-fraction must be in (0, 1), got {a.test_fraction}"),
        (a.attempts < 1, f"--attempts must be >= 1, got {a.attempts}"),
        (a.max_trace_tokens < 0, f"--max-trace-tokens must be >= 0, got {a.max_trace_tokens}"),
        (a.family == "sokoban" and a.deterministic,
         "--deterministic is for mazes (Sokoban data uses the nondeterministic A*)"),
        (a.shard is not None and part(a.shard) is None, f"--shard must be i/n with 0 <= i < n, got {a.shard}"),
        (a.shard is not None and a.seal, "--shard writes a part, --seal checks the whole: one at a time"),
        (a.slurm_array and (a.shard is not None or a.seal), "--slurm-array sets the part itself: no --shard or --seal"),
        (a.family == "sokoban" and (a.walls < 0 or a.boxes < 1
                                    or a.walls + 2 * a.boxes + 1 > (size - 2) ** 2),
         f"--walls {a.walls} / --boxes {a.boxes} do not fit a {size}x{size} level"),
    ]
    for failed, message in checks:
        if failed:
            _error(message)
    family_only = {"deterministic": a.deterministic, "attempts": a.attempts} if a.family == "maze" else \
        {"max_trace_tokens": a.max_trace_tokens, "walls": a.walls, "boxes": a.boxes}
    settings = Settings(a.family, size, a.train, a.test, a.seed, a.shard_size, a.test_fraction, **family_only)
    mine = array_share() if a.slurm_array else part(a.shard) if a.shard else None
    return settings, a.out, a.workers, not a.no_progress, mine, a.seal or a.slurm_array


def array_share() -> tuple[int, int]:
    """(this task's index, the number of tasks) of the SLURM array job this process runs in."""
    try:
        first, step = int(os.environ["SLURM_ARRAY_TASK_MIN"]), int(os.environ.get("SLURM_ARRAY_TASK_STEP", 1))
        return (int(os.environ["SLURM_ARRAY_TASK_ID"]) - first) // step, int(os.environ["SLURM_ARRAY_TASK_COUNT"])
    except (KeyError, ValueError):
        _error("--slurm-array: not a task of a SLURM array job (submit with sbatch --array=0-<n-1>)")


def part(text: str) -> tuple[int, int] | None:
    """(i, n) from "i/n", None when it is not a valid part."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        return None
    return (i, n) if 0 <= i < n else None


def seal(settings: Settings, out: Path) -> None:
    """Before the manifest: every shard written, each file as its summary's sha256 says."""
    missing = [shard_name(s, i) for s, i, _ in settings.shards() if not (out / f"{shard_name(s, i)}.json").exists()]
    if missing:
        _error(f"{len(missing)} of {len(settings.shards())} shards are not written (first: {missing[0]}); "
               "run the missing --shard parts, then --seal again")
    for split, index, _ in settings.shards():
        summary = json.loads((out / f"{shard_name(split, index)}.json").read_text())
        if hashlib.sha256((out / summary["file"]).read_bytes()).hexdigest() != summary["sha256"]:
            _error(f"{out / summary['file']} does not match its sha256: delete it and its .json, "
                   "rerun its --shard part, then --seal again")


def prepare(settings: Settings, out: Path, shared: bool = False) -> None:
    """Create --out, or check that it holds this very dataset; drop temporary files of a killed run
    (not when `shared`: the other parts' processes are writing theirs)."""
    out.mkdir(parents=True, exist_ok=True)
    wanted = asdict(settings)
    path = out / SETTINGS
    if path.exists():
        found = json.loads(path.read_text())
        if found != wanted:
            changed = ", ".join(f"{k}: {found.get(k)} -> {v}" for k, v in wanted.items() if found.get(k) != v)
            _error(f"{out} holds a dataset made with other settings ({changed}); choose another --out")
    else:
        _write_atomic(path, json.dumps(wanted, indent=1).encode())
    for stale in [] if shared else out.glob(".*.tmp-*"):
        stale.unlink(missing_ok=True)


def run_shards(settings: Settings, out: Path, workers: int, progress: bool,
               mine: tuple[int, int] = (0, 1)) -> None:
    """Write the shards not written yet; mine = (i, n): only every n-th shard from the i-th."""
    shards = [shard for j, shard in enumerate(settings.shards()) if j % mine[1] == mine[0]]
    jobs = [(settings, split, index, count, str(out)) for split, index, count in shards
            if not (out / f"{shard_name(split, index)}.json").exists()]
    done = sum(count for _, _, count in shards) - sum(job[3] for job in jobs)
    pool = None
    if workers > 1 and len(jobs) > 1:
        # fork where there is one (the workers inherit this module, however it was imported),
        # and before the progress bar starts its monitor thread
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = multiprocessing.get_context(method).Pool(min(workers, len(jobs)))
    try:
        with tqdm(total=sum(count for _, _, count in shards), initial=done, unit="ex", disable=not progress,
                  desc=f"{settings.family} {settings.size}", smoothing=0.1) as bar:
            summaries = pool.imap_unordered(write_shard, jobs) if pool else map(write_shard, jobs)
            for summary in summaries:
                bar.update(summary["count"])
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def write_manifest(settings: Settings, out: Path) -> dict[str, Any]:
    summaries = [json.loads((out / f"{shard_name(s, i)}.json").read_text()) for s, i, _ in settings.shards()]
    counts, unique, ids_by_split = {}, {}, {}
    for split in SPLITS:
        ids = [i for s in summaries if s["split"] == split for i in s["ids"]]
        counts[split], unique[split], ids_by_split[split] = len(ids), len(set(ids)), set(ids)
    total = max(1, sum(counts.values()))
    vocab = maze_vocabulary(settings.size) if settings.family == "maze" else sokoban_vocabulary(settings.size)
    manifest = {
        "settings": asdict(settings), "seed": settings.seed, "generator_version": GENERATOR_VERSION,
        "counts": counts, "unique": unique,
        "cross_split_ids": len(ids_by_split["train"] & ids_by_split["test"]),
        "vocabulary_size": len(vocab),
        "stats": {"mean_trace_tokens": sum(s["trace_tokens_sum"] for s in summaries) / total,
                  "max_trace_tokens": max(s["trace_tokens_max"] for s in summaries),
                  "mean_plan_nodes": sum(s["plan_nodes_sum"] for s in summaries) / total,
                  "max_cost": max(s["max_cost"] for s in summaries),
                  "worker_seconds": sum(s["seconds"] for s in summaries)},
        "shards": [{k: s[k] for k in ("file", "split", "index", "count", "sha256")} for s in summaries],
    }
    manifest["dataset_sha256"] = hashlib.sha256("".join(s["sha256"] for s in summaries).encode()).hexdigest()
    if settings.family == "sokoban" and manifest["stats"]["max_cost"] > SOKOBAN_MAX_COST:
        print(f"warning: a cost of {manifest['stats']['max_cost']} exceeds the Sokoban vocabulary "
              f"(c0..c{SOKOBAN_MAX_COST})", file=sys.stderr)
    _write_atomic(out / MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """The manifest, or None after a --shard part (the dataset is sealed once all parts are done)."""
    settings, out, workers, progress, mine, sealing = parse_args(argv)
    prepare(settings, out, shared=mine is not None)
    if mine is not None:
        run_shards(settings, out, workers, progress, mine)
        total = len(settings.shards())
        left = sum(not (out / f"{shard_name(split, index)}.json").exists() for split, index, _ in settings.shards())
        ready = sealing and not left  # an array task seals once it finds every part written
        print(f"{out}: part {mine[0]}/{mine[1]} written ({len(range(mine[0], total, mine[1]))} shards of {total}); "
              + ("sealing the manifest" if ready else f"{left} shards still being written" if left
                 else "every part is written: seal the manifest with --seal"))
        if not ready:
            return None
    if sealing:
        seal(settings, out)
    else:
        run_shards(settings, out, workers, progress)
    manifest = write_manifest(settings, out)
    stats = manifest["stats"]
    print(f"{out}: {manifest['counts']['train']} train / {manifest['counts']['test']} test examples, "
          f"{len(manifest['shards'])} shards, mean trace {stats['mean_trace_tokens']:.0f} tokens, "
          f"{stats['worker_seconds']:.1f} s in workers")
    return manifest


if __name__ == "__main__":
    main()
