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


class TracedLine:
    """A traced toy task: find the integer x with 2x + 1 == target, told only larger/smaller."""

    higher_is_better = False
    objective = "Find x so that the output equals the target."

    def __init__(self, seed: int, target: int = 7, start: int = 0, limit: int = 10) -> None:
        from trace_core import node

        self.target, self.limit, self._start = target, limit, start
        self.x = node(start, trainable=True, name="x")

    def parameters(self):
        return [self.x]

    def init_params(self):
        return {"x": self._start}

    def evaluate(self, params):
        from harness.api import Feedback

        y = self.x * 2 + 1
        if y.data == self.target:
            text = "Success."
        else:
            text = f"The output {y.data} needs to be {'larger' if y.data < self.target else 'smaller'}."
        return Feedback(score=float(abs(y.data - self.target)), text=text, output=y)

    def test(self, params):
        (value,) = params.values()  # {py_name of x: value}, as the optimizer asked it
        return {"x": value}


def nudge(messages):
    """Test-double responder: read the newest value of x and the newest feedback, step x by one."""
    import json
    import re

    user = messages[-1]["content"]
    values = re.findall(r"\(int\) (x\d+)=(-?\d+)", user) or re.findall(r'"(x\d+)": (-?\d+)', user)
    name, value = values[-1][0], int(values[-1][1])
    if "#Feedback\n" in user:  # OptoPrime: the report's own feedback section
        newest = user.split("#Feedback\n", 1)[1].split("=" * 40, 1)[0]
    else:  # OPRO: the last (variables, feedback) pair of the history
        newest = [line for line in user.splitlines() if '"feedback"' in line][-1]
    found = re.findall(r"needs to be (larger|smaller)", newest)
    step = 0 if not found else 1 if found[-1] == "larger" else -1
    return json.dumps({"reasoning": "scripted test double", "suggestion": {name: value + step}})


def bump_first_variable(messages):
    """Test-double responder for any OptoPrime prompt: add 1 to the first numeric variable."""
    import json
    import re

    user = messages[-1]["content"]
    if "#Variables\n" in user:  # OptoPrime: the report's variables section
        section = user.split("#Variables\n", 1)[1].split("\n\n", 1)[0]
        kind, name, value = re.search(r"\((int|float)\) (\w+)=(-?[\d.eE+-]+)", section).groups()
        new = int(value) + 1 if kind == "int" else float(value) + 1.0
    else:  # OPRO: the newest (variables, feedback) pair
        newest = json.loads([line for line in user.splitlines() if line.startswith('{"variables"')][-1])
        name, value = next(iter(newest["variables"].items()))
        new = value + 1
    return json.dumps({"reasoning": "scripted test double", "suggestion": {name: new}})


def slow_numeric(delay: float = 0.5, **kwargs):
    """The numeric task with a pause in every evaluation: a job that is still computing when a
    test stops it (sweeps killed mid-way, SLURM jobs cancelled or requeued)."""
    import time

    from tasks.trace_paper.numeric import NumericTask

    class SlowNumeric(NumericTask):
        def evaluate(self, params):
            time.sleep(delay)
            return super().evaluate(params)

    return SlowNumeric(**{"stop_on_success": False, **kwargs})  # keeps going after an exact hit
