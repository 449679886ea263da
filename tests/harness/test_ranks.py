"""Sampling split over DDP ranks (issue 26, defects 3-4): each rank answers its share, prompt_batch
prompts per call, and every rank gets all answers in order. Two real gloo processes."""
from __future__ import annotations

import json
import os

import torch.distributed as dist
import torch.multiprocessing as mp

from harness.ranks import answer_sharded, sharded_solve


class Model:
    """A solver that decodes several prompts per call and notes the calls it got."""

    prompt_batch = 2

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def solve_batch(self, examples: list[int]) -> list[int]:
        self.calls.append(list(examples))
        return [10 * e for e in examples]

    def solve(self, example: int) -> int:
        return self.solve_batch([example])[0]


class Task:
    def test_examples(self) -> list[int]:
        return list(range(7))

    def test(self, solve) -> dict[str, float]:
        return {"sum": float(sum(solve(e) for e in self.test_examples()))}


def _rank(rank: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2")
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    try:
        model = Model()
        answers, shares = answer_sharded(list(range(5)), model.solve_batch, batch=2)
        solve, test_shares = sharded_solve(Task(), model.solve)
        out = {"answers": answers, "shares": shares, "calls": model.calls, "test": Task().test(solve),
               "test_shares": test_shares}
        with open(f"{folder}/rank{rank}.json", "w") as file:
            json.dump(out, file)
    finally:
        dist.destroy_process_group()


def test_each_rank_answers_its_share_in_batches_and_all_get_every_answer(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    mp.start_processes(_rank, args=(str(tmp_path),), nprocs=2, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for out in ranks:
        assert out["answers"] == [0, 10, 20, 30, 40] and out["shares"] == [3, 2]
        assert out["test"] == {"sum": 210.0} and out["test_shares"] == [4, 3]
    # rank 0: examples 0, 2, 4 then test examples 0, 2, 4, 6; rank 1: 1, 3 then 1, 3, 5; two per call
    assert ranks[0]["calls"] == [[0, 2], [4], [0, 2], [4, 6]]
    assert ranks[1]["calls"] == [[1, 3], [1, 3], [5]]


def test_one_process_answers_all_in_order(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model = Model()
    assert answer_sharded([3, 1, 2], model.solve_batch, batch=2) == ([30, 10, 20], [3])
    assert model.calls == [[3, 1], [2]]
