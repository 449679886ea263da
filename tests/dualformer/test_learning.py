"""The encoder-decoder can learn what the planning tasks need: reading a token out of the prompt.

A maze answer starts with the start cell, which the decoder can only copy through cross-attention.
With a too-small initialisation the model sat at chance on that copy for the whole mini-scale
budget; these runs pin that it is learned within a few hundred steps at test-sized widths.
"""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from dualformer.model import Transformer, preset  # noqa: E402

VOCAB, LENGTH = 20, 40
FILLER = (3, 13)        # tokens that fill the prompt
MARKED = (13, 18)       # one of these appears once per prompt: the answer
BOS, EOS, MARKER = 2, 2, 1


def _train(make_batch, steps: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    model = Transformer(preset("tiny", VOCAB))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99))
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        prompt, answer = make_batch(generator)
        tokens = torch.stack([torch.full_like(answer, BOS), answer, torch.full_like(answer, EOS)], 1)
        loss = model.loss(prompt, torch.ones_like(prompt, dtype=torch.bool), tokens,
                          torch.ones_like(tokens, dtype=torch.bool))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses[-20:]) / 20


def _unique_token(generator: torch.Generator, n: int = 32):
    """Answer: the one prompt token drawn from MARKED (found by content alone)."""
    prompt = torch.randint(*FILLER, (n, LENGTH), generator=generator)
    answer = torch.randint(*MARKED, (n,), generator=generator)
    prompt[torch.arange(n), torch.randint(1, LENGTH, (n,), generator=generator)] = answer
    return prompt, answer


def _after_marker(generator: torch.Generator, n: int = 32):
    """Answer: the token right after a marker (found by position relative to it, like a start cell)."""
    prompt = torch.randint(*FILLER, (n, LENGTH), generator=generator)
    where = torch.randint(1, LENGTH - 1, (n,), generator=generator)
    prompt[torch.arange(n), where] = MARKER
    return prompt, prompt[torch.arange(n), where + 1]


def test_learns_to_retrieve_a_token_by_content():
    chance = math.log(MARKED[1] - MARKED[0]) / 2  # the answer is uniform; eos is certain
    assert _train(_unique_token, steps=150) < 0.1 * chance


def test_learns_to_copy_the_token_after_a_marker():
    chance = math.log(FILLER[1] - FILLER[0]) / 2
    assert _train(_after_marker, steps=400) < 0.3 * chance
