"""Test-time work split over DDP processes: each rank answers its share, rank 0 scores them all.

A task that can list its test examples in the order its `test()` asks for them
(`task.test_examples()`) gets answers computed by rank `i % world` for example `i`; the answers
are gathered to every rank, and `task.test` then runs on the gathered answers, so the metrics are
those of the whole test set while each process samples 1/world of it. Other tasks are answered
whole by every rank (correct, only not faster).
"""
from __future__ import annotations

import os
from typing import Any, Callable


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def sharded_solve(task: Any, solve: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], list[int] | None]:
    """(a solve for `task.test`, how many test examples each rank answered; None when not split)."""
    world = world_size()
    if world == 1 or not hasattr(task, "test_examples"):
        return solve, None
    import torch.distributed as dist

    examples = list(task.test_examples())
    rank = dist.get_rank()
    mine = {i: solve(example) for i, example in enumerate(examples) if i % world == rank}
    parts: list[dict[int, Any]] = [{} for _ in range(world)]
    dist.all_gather_object(parts, mine)
    answers = {i: answer for part in parts for i, answer in part.items()}
    asked = iter(range(len(examples)))

    def gathered(example: Any) -> Any:
        i = next(asked)
        if examples[i] is not example:
            raise RuntimeError("task.test asked for its examples in another order than test_examples()")
        return answers[i]

    return gathered, [len(part) for part in parts]
