"""Small real learners and tasks for testing the runner's contracts (no paper model needed)."""
from __future__ import annotations

from collections import Counter


class ParityTask:
    """Instances are integers; the label is their parity. test() scores a solver's accuracy."""

    def __init__(self, seed: int, size: int = 20) -> None:
        self.train = [(i, i % 2) for i in range(seed, seed + size)]
        self.held_out = [(i, i % 2) for i in range(1000, 1000 + size)]

    def test(self, solve) -> dict[str, float]:
        return {"acc": sum(solve(x) == y for x, y in self.held_out) / len(self.held_out)}


class LastBitModel:
    """Learns, per value of the last bit, the most frequent label (so it learns parity)."""

    def __init__(self, epochs: int = 2) -> None:
        self.epochs, self.table = epochs, {}

    def fit(self, task, logger) -> None:
        for epoch in range(self.epochs):
            counts: dict[int, Counter] = {}
            for x, y in task.train:
                counts.setdefault(x & 1, Counter())[y] += 1
            self.table = {bit: c.most_common(1)[0][0] for bit, c in counts.items()}
            logger.log({"train/acc": sum(self.solve(x) == y for x, y in task.train) / len(task.train)},
                       step=epoch)

    def solve(self, instance):
        return self.table.get(instance & 1, 0)
