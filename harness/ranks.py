"""Sampling work split over DDP processes: each rank answers its share, every rank gets all answers.

    answers, shares = answer_sharded(examples, model.solve_batch, batch=8, desc="test")

Rank `r` of `world` answers examples r, r + world, ..., `batch` prompts per call when the solver
takes several at once (a PlanningModel's `solve_batch`, which decodes them together); the answers
are gathered to every rank in the examples' order. `sharded_solve` wraps that for `task.test`
(and any `task.score` over a list, e.g. the held-out set during training): a task that lists its
test examples in the order its `test()` asks for them (`task.test_examples()`) is scored on the
gathered answers, so the metrics are those of the whole set while each process samples 1/world of
it. Other tasks are answered whole by every rank (correct, only not faster). A solver whose samples
depend only on the example (per-prompt random streams, dualformer.sample) gives the same answers
whatever the number of ranks.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    return int(os.environ.get("RANK", 0))


def answer_sharded(examples: Sequence[Any], solve_batch: Callable[[list[Any]], list[Any]], batch: int = 1,
                   desc: str | None = None) -> tuple[list[Any], list[int]]:
    """(every example's answer in order, on every rank; how many examples each rank answered)."""
    from harness.progress import bar

    world, me = world_size(), rank()
    indices = list(range(me, len(examples), world))
    mine: dict[int, Any] = {}
    with bar(total=len(indices), desc=desc, log_every_s=60, disable=desc is None or me != 0) as progress:
        for start in range(0, len(indices), max(1, batch)):
            chunk = indices[start:start + max(1, batch)]
            mine.update(zip(chunk, solve_batch([examples[i] for i in chunk])))
            progress.update(len(chunk))
    parts = [mine]
    if world > 1:
        import torch.distributed as dist

        parts = [{} for _ in range(world)]
        dist.all_gather_object(parts, mine)
    answers = {i: answer for part in parts for i, answer in part.items()}
    return [answers[i] for i in range(len(examples))], [len(part) for part in parts]


def sharded_solve(task: Any, solve: Callable[[Any], Any], examples: Sequence[Any] | None = None,
                  desc: str | None = "test") -> tuple[Callable[[Any], Any], list[int] | None]:
    """(a solve for `task.test` / `task.score(examples, ...)`, how many examples each rank
    answered; None when not split). `examples`: the list scored, default `task.test_examples()`;
    desc: the progress bar's name (None: no bar)."""
    if world_size() == 1 or (examples is None and not hasattr(task, "test_examples")):
        return solve, None
    examples = list(task.test_examples() if examples is None else examples)
    model = getattr(solve, "__self__", None)  # a PlanningModel decodes several prompts per call
    batched = getattr(model, "solve_batch", None)
    size = int(getattr(model, "prompt_batch", 1)) if batched else 1
    answers, shares = answer_sharded(examples, batched or (lambda chunk: [solve(e) for e in chunk]), size, desc)
    asked = iter(range(len(examples)))

    def gathered(example: Any) -> Any:
        i = next(asked)
        if examples[i] is not example:
            raise RuntimeError("task.test asked for its examples in another order than test_examples()")
        return answers[i]

    return gathered, shares
