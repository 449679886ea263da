"""Tests of the planning tokens: vocabularies, exact layouts, round trips, and trace dropout.

    .venv/bin/python -m pytest tests/dualformer/test_data.py -q
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dualformer.data import (BOS, EOS, MODE_PREFIX, TokenSequence, TraceDropout, maze_vocabulary, parse_maze,
                             parse_sokoban, sokoban_vocabulary, split_decoder, tokenize, tokenize_maze)
from harness.api import ConfigError
from support import CONFIGS, DATA
from tasks.dualformer_paper import maze, sokoban
from tasks.dualformer_paper.planning import Example
from tasks.dualformer_paper.sokoban import Board, SokobanLevel

ONE_TRACE = TokenSequence(
    prompt=("start", "0", "0", "goal", "1", "1"),
    trace=tuple(tuple(c.split()) for c in (
        "create 0 0 c0 c2", "close 0 0 c0 c2", "create 1 0 c1 c1", "create 0 1 c1 c1", "close 1 0 c1 c1",
        "create 1 1 c2 c0", "close 0 1 c1 c1", "create 2 0 c2 c2", "create 0 2 c2 c2", "create 2 1 c3 c1",
        "close 1 1 c2 c0")),
    plan=("plan", "0", "0", "plan", "1", "0", "plan", "1", "1"))


def test_vocabularies_have_the_upstream_sizes_and_bos_eos_first():
    assert len(maze_vocabulary(10)) == 118 and len(maze_vocabulary(30)) == 938  # as upstream's logs
    assert len(sokoban_vocabulary()) == 7 + 100 + 7 + 2
    for vocab in (maze_vocabulary(10), sokoban_vocabulary()):
        assert vocab.tokens[:2] == (BOS, EOS) and vocab.encode([BOS, EOS]) == [0, 1]
        assert vocab.decode(vocab.encode(vocab.tokens)) == list(vocab.tokens)
    assert set(maze_vocabulary(10).tokens) < set(maze_vocabulary(30).tokens)  # one family vocabulary
    with pytest.raises(ValueError, match="not in the vocabulary"):
        maze_vocabulary(10).encode(["c100"])


def test_maze_tokens_have_the_exact_layout():
    m = maze.Maze(3, (1, 4, 5), 0, 8)  # walls (1,0), (1,1), (2,1)
    result = maze.solve(m)
    seq = tokenize_maze(m, result.plan, result.events)
    assert " ".join(seq.encoder_tokens()) == "bos start 0 0 goal 2 2 wall 1 0 wall 1 1 wall 2 1 eos"
    assert " ".join(seq.decoder_tokens()) == (
        "bos create 0 0 c0 c4 close 0 0 c0 c4 create 0 1 c1 c3 close 0 1 c1 c3 create 0 2 c2 c2 "
        "close 0 2 c2 c2 create 1 2 c3 c1 close 1 2 c3 c1 create 2 2 c4 c0 close 2 2 c4 c0 "
        "plan 0 0 plan 0 1 plan 0 2 plan 1 2 plan 2 2 eos")


def test_golden_mazes_tokenize_as_recorded():
    for record in json.loads((DATA / "planning" / "maze_golden.json").read_text()):
        if record["plan"] is None:
            continue
        m = maze.Maze.from_dict(record["maze"])
        seq = tokenize_maze(m, record["plan"], [tuple(e) for e in record["events"]])
        assert " ".join(seq.encoder_tokens()) == record["encoder"]
        assert " ".join(seq.decoder_tokens()) == record["decoder"]


def test_sokoban_tokens_have_the_exact_layout():
    walls = tuple(sorted({c for c in range(25) if c % 5 in (0, 4) or c // 5 in (0, 4)} | {8}))
    level = SokobanLevel(5, walls, boxes=(12,), docks=(13,), worker=11)  # worker (1,2), box (2,2), dock (3,2)
    result = sokoban.solve(level)
    seq = tokenize(Example(level, result, "train"))
    wall_tokens = " ".join(f"wall {x} {y}" for x, y in sorted((c % 5, c // 5) for c in walls))
    assert " ".join(seq.encoder_tokens()) == f"bos worker 1 2 box 2 2 dock 3 2 {wall_tokens} eos"
    assert " ".join(seq.decoder_tokens()) == (  # children up, down, right; the docked box leaves the clause
        "bos create worker 1 2 box 2 2 c0 c1 close worker 1 2 box 2 2 c0 c1 "
        "create worker 1 1 box 2 2 c1 c1 create worker 1 3 box 2 2 c1 c1 "
        "create worker 2 2 c1 c0 close worker 2 2 c1 c0 plan 1 2 plan 2 2 eos")


def test_maze_round_trip_through_ids():
    vocab = maze_vocabulary(30)
    for size in (10, 30):
        for example in maze.generate(size, 15, np.random.default_rng(size)):
            seq = tokenize(example)
            encoder = vocab.decode(vocab.encode(seq.encoder_tokens()))
            decoder = vocab.decode(vocab.encode(seq.decoder_tokens()))
            parsed, plan, events = parse_maze(encoder, decoder, size)
            assert parsed == example.task and tuple(plan) == example.plan and tuple(events) == example.events


def test_sokoban_round_trip_through_ids():
    vocab = sokoban_vocabulary()
    for example in sokoban.generate(15, np.random.default_rng(0)):
        seq = tokenize(example)
        level, path, clauses = parse_sokoban(vocab.decode(vocab.encode(seq.encoder_tokens())),
                                             vocab.decode(vocab.encode(seq.decoder_tokens())))
        board = Board(example.task)
        assert level == example.task and path == board.worker_path(example.plan)
        assert clauses == [(k, s % board.cells, board.undocked(s), g, h) for k, s, g, h in example.events]


def test_mode_prefixes_are_how_decoders_start():
    seq = ONE_TRACE
    assert seq.decoder_tokens()[:2] == list(MODE_PREFIX["slow"])
    assert seq.decoder_tokens(trace=[])[:2] == list(MODE_PREFIX["fast"])
    assert MODE_PREFIX["auto"] == (BOS,)
    assert split_decoder(seq.decoder_tokens(trace=[])) == ([], list(seq.plan))


def kept(dropout: TraceDropout, level: int, seed: int = 0) -> list[str]:
    return ONE_TRACE.decoder_tokens(dropout.apply(ONE_TRACE.trace, level, np.random.default_rng(seed)))


def test_each_level_removes_exactly_what_it_says():
    d = TraceDropout(p=(0.2, 0.2, 0.2, 0.2, 0.2))
    creates = [c for c in ONE_TRACE.trace if c[0] == "create"]  # 7 of them
    assert kept(d, 0) == ONE_TRACE.decoder_tokens()
    assert kept(d, 1) == ONE_TRACE.decoder_tokens(creates)
    assert kept(d, 2) == ONE_TRACE.decoder_tokens([c[:3] for c in creates])
    for seed in range(20):
        clauses, plan = split_decoder(kept(d, 3, seed))
        assert plan == list(ONE_TRACE.plan)
        assert len(clauses) == 7 - 2  # round(0.3 * 7) = 2 creates gone
        assert all(tuple(c) in [k[:3] for k in creates] for c in clauses)
        assert [k[:3] for k in creates if list(k[:3]) in clauses] == [tuple(c) for c in clauses]  # order kept
    assert kept(d, 4) == [BOS, *ONE_TRACE.plan, EOS]


def test_level_three_drops_are_uniform_over_creates():
    d = TraceDropout(p=(0, 0, 0, 1, 0))
    counts = np.zeros(7)
    creates = [c[:3] for c in ONE_TRACE.trace if c[0] == "create"]
    rng = np.random.default_rng(0)
    for _ in range(3000):
        survivors = {tuple(c) for c in split_decoder(d(ONE_TRACE, rng)[1])[0]}
        counts += [c not in survivors for c in creates]
    assert np.allclose(counts / 3000, 2 / 7, atol=0.04)


def test_level_frequencies_match_p():
    p = (0.45, 0.2, 0.15, 0.15, 0.05)
    d, rng, n = TraceDropout(p=p), np.random.default_rng(1), 20_000
    levels = np.array([d(ONE_TRACE, rng)[0] for _ in range(n)])
    freq = np.bincount(levels, minlength=5) / n
    assert np.all(np.abs(freq - p) < 4.5 * np.sqrt(np.array(p) * (1 - np.array(p)) / n) + 1e-9)
    draws = {d(ONE_TRACE, np.random.default_rng(s))[0] for s in range(50)}
    assert len(draws) == 5  # drawn afresh each time an example is loaded


def test_upstream_maze_variant_keeps_costs_and_drops_ten_to_forty_percent():
    d = TraceDropout(p=(0, 0, 0, 1, 0), upstream=True, family="maze")
    example = next(maze.generate(20, 1, np.random.default_rng(0)))
    seq = tokenize(example)
    creates = [c for c in seq.trace if c[0] == "create"]
    rng, dropped = np.random.default_rng(0), set()
    for _ in range(300):
        clauses, _ = split_decoder(d(seq, rng)[1])
        assert all(len(c) == 5 for c in clauses)  # costs kept
        dropped.add(len(creates) - len(clauses))
    assert min(dropped) >= len(creates) * 10 // 100 and max(dropped) <= len(creates) * 40 // 100
    assert len(dropped) > 10


def test_upstream_sokoban_variant_is_frozen_per_example():
    d = TraceDropout(p=(0.2, 0.2, 0.2, 0.2, 0.2), upstream=True, family="sokoban", seed=3)
    examples = list(sokoban.generate(20, np.random.default_rng(0)))
    outputs = {}
    for example in examples:
        seq = tokenize(example)
        first = d(seq, np.random.default_rng(0), key=example.id)
        assert d(seq, np.random.default_rng(99), key=example.id) == first  # every epoch the same
        outputs[example.id] = first[0]
    assert len(set(outputs.values())) > 1
    with pytest.raises(ValueError, match="key"):
        d(tokenize(examples[0]), np.random.default_rng(0))
    d3 = TraceDropout(p=(0, 0, 0, 1, 0), upstream=True, family="sokoban")
    rng = np.random.default_rng(0)  # ignored: the draw comes from (seed, key)
    sizes = {len(split_decoder(d3(tokenize(e), rng, key=e.id)[1])[0]) for e in examples}
    assert len(sizes) > 1


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "dropout").glob("*.yaml")))
def test_dropout_presets_instantiate(name):
    d = instantiate(OmegaConf.load(CONFIGS / "dropout" / f"{name}.yaml"))
    assert isinstance(d, TraceDropout) and abs(sum(d.p) - 1) < 1e-9
    level, decoder = d(ONE_TRACE, np.random.default_rng(0), key="0" * 20)
    if name == "searchformer":
        assert d.p[0] == 1 and decoder == ONE_TRACE.decoder_tokens()
    if name == "solution_only":
        assert d.p[4] == 1 and decoder == [BOS, *ONE_TRACE.plan, EOS]


@pytest.mark.parametrize("p", [(1, 0, 0, 0), (0.5, 0.5, 0.5, 0, 0), (1.2, -0.2, 0, 0, 0)])
def test_bad_probabilities_are_config_errors(p):
    with pytest.raises(ConfigError, match="dropout.p"):
        TraceDropout(p=p)
