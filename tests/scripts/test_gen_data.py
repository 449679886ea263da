"""The dataset writer as a user meets it: manifest, reading back, skipping, resuming, one-line errors.

    .venv/bin/python -m pytest tests/scripts/test_gen_data.py -q
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dualformer.data import load_examples, tokenize
from support import ROOT
from tasks.dualformer_paper.maze import plan_problems
from tasks.dualformer_paper.planning import split_of
from tasks.dualformer_paper.sokoban import Board, is_solution


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module


gen_data = load_script("gen_data")
SMALL_MAZE = ["maze", "--size", "10", "--train", "300", "--test", "60", "--shard-size", "100",
              "--no-progress"]


def cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_data.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_writes_shards_and_a_manifest_that_read_back(tmp_path):
    manifest = gen_data.main([*SMALL_MAZE, "--out", str(tmp_path), "--workers", "1"])
    assert manifest["counts"] == {"train": 300, "test": 60} == manifest["unique"]
    assert manifest["cross_split_ids"] == 0 and manifest["generator_version"] == 1
    assert manifest["vocabulary_size"] == 118 and manifest["seed"] == 0
    files = [s["file"] for s in manifest["shards"]]
    assert files == [f"train-0000{i}.jsonl.gz" for i in range(3)] + ["test-00000.jsonl.gz"]
    for shard in manifest["shards"]:
        assert hashlib.sha256((tmp_path / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]
        with gzip.open(tmp_path / shard["file"], "rt") as lines:
            assert sum(1 for _ in lines) == shard["count"]
    for split, count in (("train", 300), ("test", 60)):
        examples = list(load_examples(tmp_path, split))
        assert len(examples) == count
        for example in examples:
            assert example.split == split == split_of(example.task.layout_id, 0.1)
            assert plan_problems(example.task, example.plan) == []
        tokens = sum(tokenize(e).trace_length for e in examples)
        assert tokens == sum(5 * len(e.events) for e in examples)
    assert not list(tmp_path.glob(".*tmp*"))


def test_sokoban_dataset(tmp_path):
    manifest = gen_data.main(["sokoban", "--train", "40", "--test", "10", "--shard-size", "25", "--out",
                              str(tmp_path), "--workers", "1", "--no-progress", "--max-trace-tokens", "3000"])
    assert manifest["counts"] == {"train": 40, "test": 10} and manifest["vocabulary_size"] == 116
    assert manifest["stats"]["max_trace_tokens"] < 3000 and manifest["stats"]["max_cost"] <= 99
    for example in load_examples(tmp_path, "train"):
        assert is_solution(example.task, Board(example.task).worker_path(example.plan))


def test_same_files_whatever_the_number_of_workers(tmp_path):
    one = gen_data.main([*SMALL_MAZE, "--out", str(tmp_path / "one"), "--workers", "1"])
    two = gen_data.main([*SMALL_MAZE, "--out", str(tmp_path / "two"), "--workers", "2"])
    assert one["dataset_sha256"] == two["dataset_sha256"]
    other = gen_data.main([*SMALL_MAZE, "--out", str(tmp_path / "seed1"), "--workers", "1", "--seed", "1"])
    assert other["dataset_sha256"] != one["dataset_sha256"]


def test_rerun_skips_finished_shards(tmp_path, monkeypatch):
    gen_data.main([*SMALL_MAZE, "--out", str(tmp_path), "--workers", "1"])
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / "train-00001.json").unlink()  # as if the run had died before this shard was done
    calls = []
    real = gen_data.write_shard
    monkeypatch.setattr(gen_data, "write_shard", lambda job: calls.append(job[1:4]) or real(job))
    gen_data.main([*SMALL_MAZE, "--out", str(tmp_path), "--workers", "1"])
    assert calls == [("train", 1, 100)]
    for name in ("train-00000.jsonl.gz", "train-00002.jsonl.gz", "test-00000.jsonl.gz"):
        assert (tmp_path / name).stat().st_mtime_ns == stamps[name]


def test_a_killed_run_resumes_to_the_same_dataset(tmp_path):
    args = ["maze", "--size", "30", "--train", "2000", "--test", "0", "--shard-size", "100", "--workers", "1",
            "--no-progress"]
    command = [sys.executable, str(ROOT / "scripts" / "gen_data.py"), *args, "--out", str(tmp_path / "a")]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((tmp_path / "a").glob("train-*.json"))) < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list((tmp_path / "a").glob("train-*.json")))
    assert 2 <= finished < 20 and not (tmp_path / "a" / "manifest.json").exists()
    resumed = cli(*args, "--out", str(tmp_path / "a"))
    assert resumed.returncode == 0, resumed.stderr
    assert cli(*args, "--out", str(tmp_path / "b")).returncode == 0
    read = lambda d: json.loads((tmp_path / d / "manifest.json").read_text())  # noqa: E731
    assert read("a")["dataset_sha256"] == read("b")["dataset_sha256"]
    assert read("a")["counts"] == {"train": 2000, "test": 0}


@pytest.mark.parametrize("args, says", [
    (["maze", "--train", "-1", "--test", "0"], "--train and --test must be >= 0"),
    (["maze", "--train", "0", "--test", "0"], "nothing to generate"),
    (["sokoban", "--train", "5", "--test", "0", "--deterministic"], "--deterministic is for mazes"),
    (["maze", "--train", "5", "--test", "5", "--test-fraction", "1.5"], "--test-fraction must be in (0, 1)"),
    (["labyrinth", "--train", "5", "--test", "5"], "invalid choice: 'labyrinth'"),
    (["maze", "--train", "5"], "the following arguments are required: --test"),
    (["sokoban", "--train", "5", "--test", "0", "--boxes", "30"], "do not fit a 7x7 level"),
])
def test_bad_arguments_end_with_one_error_line(args, says, tmp_path):
    result = cli(*args, "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr


def test_an_out_folder_with_other_settings_is_refused(tmp_path):
    gen_data.main([*SMALL_MAZE, "--out", str(tmp_path), "--workers", "1"])
    result = cli(*SMALL_MAZE[:-1], "--seed", "5", "--out", str(tmp_path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1
    assert "other settings (seed: 0 -> 5)" in lines[0]


def test_bench_data_runs_and_reports_every_figure():
    bench = load_script("bench_data")
    figures = bench.bench_data(n_tasks=2, seed=0, ours_at_least=2)
    for key in ("maze30_ours_s", "maze30_reference_s", "maze30_speedup", "sokoban_ours_s",
                "sokoban_reference_s", "sokoban_speedup", "sokoban_ours_capped_s"):
        assert figures[key] > 0, key
    assert figures["maze30_plans_agree"] == 1.0 and figures["sokoban_plans_agree"] == 1.0


def test_shards_split_over_machines_then_sealed_give_the_one_process_dataset(tmp_path):
    """Issue 26, defect 5: `--shard i/n` writes every n-th shard (n machines or array tasks into one
    folder), no manifest until `--seal` checks every shard and writes it."""
    out = ["--out", str(tmp_path / "split"), "--workers", "1"]
    written = []
    for i in range(3):
        assert gen_data.main([*SMALL_MAZE, *out, "--shard", f"{i}/3"]) is None, "no manifest from one part"
        written.append(sorted(p.name for p in (tmp_path / "split").glob("*-0000?.json")))
    assert written[0] == ["test-00000.json", "train-00000.json"]  # shards 0 and 3 of 4: train-0, test-0
    assert not (tmp_path / "split" / "manifest.json").exists()
    sealed = gen_data.main([*SMALL_MAZE, *out, "--seal"])
    whole = gen_data.main([*SMALL_MAZE, "--out", str(tmp_path / "whole"), "--workers", "1"])
    assert sealed["dataset_sha256"] == whole["dataset_sha256"]


def test_sealing_refuses_a_missing_or_altered_shard(tmp_path):
    out = ["--out", str(tmp_path), "--workers", "1"]
    gen_data.main([*SMALL_MAZE, *out, "--shard", "0/2"])
    result = cli(*SMALL_MAZE, *out, "--seal")
    assert result.returncode == 2 and result.stderr.startswith("error: 2 of 4 shards are not written")
    gen_data.main([*SMALL_MAZE, *out, "--shard", "1/2"])
    (tmp_path / "train-00001.jsonl.gz").write_bytes(b"changed")
    result = cli(*SMALL_MAZE, *out, "--seal")
    assert result.returncode == 2 and "train-00001.jsonl.gz does not match its sha256" in result.stderr
    assert not (tmp_path / "manifest.json").exists()
    bad = cli(*SMALL_MAZE, *out, "--shard", "2/2")
    assert bad.returncode == 2 and "--shard must be i/n with 0 <= i < n" in bad.stderr
