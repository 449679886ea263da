"""Length-bucketed batches: every example once per epoch, batches of similar lengths, random batch order."""
from __future__ import annotations

import numpy as np

from dualformer.batching import BucketedOrder, pad_width, real_fraction


def test_an_epoch_is_a_permutation_cut_into_batches_of_similar_length():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 400, size=1000)
    order = BucketedOrder(lambda epoch: lengths, batch=16, seed=0, window=10)(0)
    assert sorted(order.tolist()) == list(range(1000))
    batches = [order[i:i + 16] for i in range(0, 992, 16)]
    bucketed = np.mean([real_fraction(lengths[b].tolist(), int(lengths[b].max())) for b in batches])
    shuffled = rng.permutation(1000)
    random = np.mean([real_fraction(lengths[shuffled[i:i + 16]].tolist(), int(lengths[shuffled[i:i + 16]].max()))
                      for i in range(0, 992, 16)])
    assert bucketed > 0.8 and random < 0.6
    firsts = [int(lengths[b].min()) for b in batches]
    assert firsts != sorted(firsts), "the batches themselves come in a random order"


def test_each_epoch_is_computed_once_and_differs_from_the_next():
    calls = []
    order = BucketedOrder(lambda epoch: calls.append(epoch) or np.arange(64) % 7, batch=8, seed=1)
    first = order(0)
    assert (order(0) == first).all() and calls == [0]
    assert not (order(1) == first).all() and calls == [0, 1]


def test_pad_width_rounds_up():
    assert (pad_width(33, 32), pad_width(64, 32), pad_width(5, 1)) == (64, 64, 5)
