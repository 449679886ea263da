"""The README's GPU budget (scripts/budget.py): the table in README.md is the script's output for
the committed lengths and the configs as they are now, so the two cannot drift; the per-step
FLOPs follow the batches the configs build."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dualformer.flops import train_flops
from dualformer.model import preset
from scripts import budget

TINY = preset("tiny", vocab_size=20)


def test_the_readme_table_is_the_scripts_output():
    lengths = json.loads(budget.LENGTHS.read_text())
    assert budget.readme_table() == budget.table(lengths, budget.Assumptions())
    assert "ESTIMATES from FLOP counts" in budget.readme_table() and "not measured on a GPU" in budget.readme_table()


def test_a_step_costs_its_padded_batch():
    prompts, decoders = np.array([5, 9]), np.array([33, 64])
    # bucketed: each sequence padded to the multiple (64 and 64 decoder tokens, 63 inputs each)
    bucketed = budget.step_flops(TINY, prompts, decoders, 4, True, 32, gpus=1)
    assert bucketed == 4 * np.mean([train_flops(TINY, 5, 63).total, train_flops(TINY, 9, 63).total])
    # random, one sequence per process: no padding at all, the mean sequence's cost per row
    alone = budget.step_flops(TINY, prompts, decoders, 8, False, 1, gpus=8)
    lo, hi = train_flops(TINY, 5, 32).total, train_flops(TINY, 9, 63).total
    assert 8 * lo < alone < 8 * hi
    # several per process: padded to the longest of the share, so never cheaper
    assert budget.step_flops(TINY, prompts, decoders, 8, False, 1, gpus=1) > alone


def test_lengths_measured_under_another_dropout_are_refused():
    lengths = json.loads(budget.LENGTHS.read_text())
    lengths["maze10"]["searchformer"]["dropout"] = "TraceDropout(p=(0.9, ...))"
    with pytest.raises(SystemExit, match="error: .*budget.py measure"):
        budget.Budget(lengths, budget.Assumptions()).experiment("searchformer_maze10_1gpu")
