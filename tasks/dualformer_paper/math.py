r"""MATH (Hendrycks et al. 2021) as step-structured solutions, with Dualformer's step dropout.

    python -m harness.train task=math model=causal_lm                      # hub data (datasets)
    python -m harness.train task=math_mini model=causal_lm_tiny \
        task.train.source=../shared/data/math task.test_data.source=../shared/data/math/math500

    from tasks.dualformer_paper.math import MathTask, StepDropout, split_steps
    steps = split_steps(problem.solution)                  # sentences / display blocks, unboxed
    pairs = task.training_pairs(StepDropout(p=0.2), seed=7)  # one draw per example (per epoch)

Step structure (ours; the paper's augmented, step-structured "Aug-MATH" is not public,
specs/dualformer.md section 6). A solution is cut into steps at sentence ends outside math:
`.`, `!` or `?` followed by white space, a blank line, or a display block (`\[..\]`, `$$..$$`,
`\begin{..}..\end{..}`) whose content ends in `.`; math, braces and `[asy]` pictures are never
cut, and abbreviations (e.g., i.e., etc.) do not end a sentence. Boxes are unwrapped inside the
steps and the last box becomes a separate answer line, so the answer is never a step:

    Problem: <problem>
    Solution:
    Step: <step 1>
    Step: <step 2>
    Answer: $\boxed{<answer>}$

Step dropout (Dualformer for text). Each example draws, independently and anew every epoch, one
of three cases from Cat(mix): "full" keeps every step, "partial" drops each step independently
with probability p, "fast" drops every step (answer only). p = 0 is the paper's baseline (no
dropout at all, whatever the mix). The paper fixes one rate p per run, swept over 0.1-0.4 (spec
section 6) but not how the three cases mix: the default mix (0.5, 0.25, 0.25) is ours, the
analogue of the maze preset's p0 = 0.5 (configs/dropout/). Inference picks the mode through the
first generated word (as `create` / `plan` do for mazes): slow forces "Step:", fast "Answer:",
auto forces nothing.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from harness.api import ConfigError
from tasks.dualformer_paper.latex import matching_brace
from tasks.dualformer_paper.math_answers import last_boxed, unbox
from tasks.dualformer_paper.math_data import DataSpec, MathProblem, load_problems  # noqa: F401 (configs name it)
from tasks.dualformer_paper.math_grader import check_grader, judge

MODES = ("slow", "fast", "auto")
KINDS = ("full", "partial", "fast")
ABBREVIATIONS = ("e.g", "i.e", "etc", "vs", "cf", "approx", "Mr", "Mrs", "Ms", "Dr", "St", "No", "Fig")
_OPENERS = ((r"\[", r"\]"), ("$$", "$$"), (r"\(", r"\)"), ("[asy]", "[/asy]"))


# ----------------------------------------------------------------------------- steps

def split_steps(solution: str) -> list[str]:
    """The reasoning steps of a solution (see the module docstring), boxes unwrapped, one line each."""
    steps, start, i, n = [], 0, 0, len(solution)
    while i < n:
        closing = _block_end(solution, i)
        if closing is not None:
            inline = solution[i] == "$" and not solution.startswith("$$", i)
            content_end, i = closing
            # display math ending in "." closes a sentence even when text follows at once
            # ("\]Then ..."); inline math only when white space follows, like a plain "."
            if _ends_sentence(solution[:content_end]) and (not inline or i >= n or solution[i].isspace()):
                steps.append(solution[start:i])
                start = i
            continue
        ch = solution[i]
        if ch == "\\":
            i += 2  # an escaped character (`\$`, `\{`, `\\`): never a delimiter
            continue
        if ch == "{":
            close = matching_brace(solution, i)
            i = close + 1 if close >= 0 else n  # braces are never cut
            continue
        if ch == "\n" and re.match(r"\n[ \t]*\n", solution[i:]):
            steps.append(solution[start:i])
            start = i
        elif ch in ".!?" and (i + 1 >= n or solution[i + 1].isspace()) and not _abbreviation(solution, i):
            steps.append(solution[start:i + 1])
            start = i + 1
        i += 1
    steps.append(solution[start:])
    return [s for s in (_clean(step) for step in steps) if s]


def _block_end(text: str, i: int) -> tuple[int, int] | None:
    """For math or a picture opening at `i`: (where its content ends, the index after it)."""
    if text.startswith("\\begin{", i):
        name_end = text.find("}", i)
        opener, closer = text[i:name_end + 1], f"\\end{{{text[i + 7:name_end]}}}"
    else:
        opener, closer = next(((o, c) for o, c in _OPENERS if text.startswith(o, i)), ("$", "$"))
        if not text.startswith(opener, i):
            return None
    end = _find_unescaped(text, closer, i + len(opener))
    return (end, end + len(closer)) if end >= 0 else (len(text), len(text))


def _find_unescaped(text: str, needle: str, start: int) -> int:
    i = start
    while (i := text.find(needle, i)) >= 0:
        backslashes = len(text[:i]) - len(text[:i].rstrip("\\"))
        if backslashes % 2 == 0 or needle.startswith("\\"):
            return i
        i += 1
    return -1


def _ends_sentence(content: str) -> bool:
    return content.rstrip().rstrip("\\").rstrip().endswith((".", "!", "?"))


def _abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"([A-Za-z.]+)$", text[:dot])
    return bool(word) and word.group(1).rstrip(".") in ABBREVIATIONS


def _clean(step: str) -> str:
    return re.sub(r"\s+", " ", unbox(step)).strip()


# ----------------------------------------------------------------------------- text format

@dataclass(frozen=True)
class SolutionFormat:
    """How a problem and a (partly dropped) solution are written for a causal LM."""

    prompt_template: str = "Problem: {problem}\nSolution:\n"
    step_prefix: str = "Step: "
    answer_prefix: str = "Answer: "

    def prompt(self, problem: str) -> str:
        return self.prompt_template.format(problem=problem.strip())

    def target(self, steps: Sequence[str], answer: str) -> str:
        lines = [self.step_prefix + s for s in steps] + [f"{self.answer_prefix}$\\boxed{{{answer}}}$"]
        return "\n".join(lines)

    def mode_prefix(self, mode: str) -> str:
        """The forced start of the response: the control that picks slow or fast mode."""
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        return {"slow": self.step_prefix, "fast": self.answer_prefix, "auto": ""}[mode].rstrip()

    def answer_of(self, response: str) -> str | None:
        """The final answer of a generated response: its last box, else its answer line."""
        boxed = last_boxed(response)
        if boxed is not None:
            return boxed
        lines = [ln for ln in response.splitlines() if ln.startswith(self.answer_prefix.strip())]
        return lines[-1][len(self.answer_prefix.strip()):].strip().strip("$") if lines else None

    def count_steps(self, response: str) -> int:
        return sum(ln.startswith(self.step_prefix.strip()) for ln in response.splitlines())


# ----------------------------------------------------------------------------- dropout

@dataclass(frozen=True)
class Draw:
    kind: str                # "full" | "partial" | "fast"
    kept: tuple[int, ...]    # indices of the steps kept, in order


@dataclass(frozen=True)
class StepDropout:
    """Randomized step dropout: Cat(mix) over full / partial (each step dropped w.p. p) / fast."""

    p: float = 0.1
    mix: tuple[float, float, float] = (0.5, 0.25, 0.25)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mix", tuple(float(w) for w in self.mix))
        if not 0.0 <= self.p <= 1.0:
            raise ConfigError(f"dropout.p must be in [0, 1], got {self.p}")
        if len(self.mix) != 3 or min(self.mix) < 0 or not math.isclose(sum(self.mix), 1.0, abs_tol=1e-6):
            raise ConfigError(f"dropout.mix must be 3 weights (full, partial, fast) >= 0 summing to 1, "
                              f"got {list(self.mix)}")

    @classmethod
    def none(cls) -> "StepDropout":
        return cls(p=0.0, mix=(1.0, 0.0, 0.0))

    def draw(self, n_steps: int, rng: np.random.Generator) -> Draw:
        if self.p == 0.0:  # the paper's baseline: no dropout at all
            return Draw("full", tuple(range(n_steps)))
        kind = KINDS[int(rng.choice(3, p=self.mix))]
        if kind == "full":
            return Draw(kind, tuple(range(n_steps)))
        if kind == "fast":
            return Draw(kind, ())
        keep = rng.random(n_steps) >= self.p
        return Draw(kind, tuple(int(i) for i in np.flatnonzero(keep)))


@dataclass(frozen=True)
class TrainingPair:
    prompt: str
    target: str
    kind: str
    kept: int    # steps kept
    steps: int   # steps in the full solution


# ----------------------------------------------------------------------------- evaluation protocol

@dataclass(frozen=True)
class Generated:
    text: str       # the response, forced prefix included
    n_tokens: int   # tokens generated (forced prefix included, end-of-sequence excluded)


@dataclass(frozen=True)
class MathQuery:
    """What the task asks a model's `solve`: for each prompt one greedy response and `n_samples`
    sampled ones, every response starting with `prefix` (the mode control)."""

    prompts: tuple[str, ...]
    prefix: str
    n_samples: int
    temperature: float
    top_p: float
    max_new_tokens: int | None = None  # None: the model's own limit


@dataclass(frozen=True)
class Attempt:
    greedy: Generated
    samples: tuple[Generated, ...] = ()


def pass_at_k(n: int, correct: int, k: int) -> float:
    """Unbiased pass@k from n samples of which `correct` are right (Chen et al. 2021)."""
    if n < k:
        raise ConfigError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - correct < k:
        return 1.0
    return 1.0 - math.prod((n - correct - i) / (n - i) for i in range(k))


@dataclass(frozen=True)
class EvalProtocol:
    """Greedy@1 and Pass@k (temperature, top-p) per inference mode (paper: k = 20, 0.7, 0.9)."""

    modes: tuple[str, ...] = ("slow", "fast")
    n_samples: int = 20
    pass_k: int = 20
    temperature: float = 0.7
    top_p: float = 0.9

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(str(m) for m in self.modes))
        if self.pass_k < 0 or self.n_samples < 0:
            raise ConfigError(f"task.protocol n_samples and pass_k must be >= 0, got "
                              f"{self.n_samples}, {self.pass_k}")


# ----------------------------------------------------------------------------- the task

@dataclass
class MathTask:
    """MATH for `harness.train` (no `evaluate`: nothing for `harness.optimize` to search): training
    pairs with step dropout, and `test(solve)` metrics.

    `limit` is the number of test problems scored (0: all; MATH-500 has 500; smoke mode sets 3);
    `n_train` the number of training problems (0: all). Subsets are drawn with `subset_seed`, the
    same for every run seed, so every run is scored on the same problems. Data loads on first use.
    Metrics, in percent: `greedy1_<mode>`, `pass<k>_<mode>`; and `gen_tokens_<mode>` (mean tokens
    of the greedy responses), `steps_<mode>` (mean steps in them).
    """

    train: DataSpec
    test_data: DataSpec
    seed: int = 0
    limit: int = 500
    n_train: int = 0
    subset_seed: int = 0
    grader: str = "math_verify"  # or "harness": ours alone (tasks/dualformer_paper/math_grader.py)
    protocol: EvalProtocol = field(default_factory=EvalProtocol)
    format: SolutionFormat = field(default_factory=SolutionFormat)
    _cache: dict[str, list[MathProblem]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.limit < 0 or self.n_train < 0:
            raise ConfigError(f"task.limit and task.n_train must be >= 0, got {self.limit}, {self.n_train}")
        check_grader(self.grader)
        for mode in self.protocol.modes:
            self.format.mode_prefix(mode)
        if self.protocol.n_samples < self.protocol.pass_k:
            raise ConfigError(f"task.protocol.n_samples ({self.protocol.n_samples}) must be >= "
                              f"pass_k ({self.protocol.pass_k})")

    def train_problems(self) -> list[MathProblem]:
        return self._subset("train", self.train, self.n_train)

    def test_problems(self) -> list[MathProblem]:
        return self._subset("test", self.test_data, self.limit)

    def _subset(self, name: str, spec: DataSpec, size: int) -> list[MathProblem]:
        if name not in self._cache:
            problems = [p for p in load_problems(spec) if p.answer]
            if 0 < size < len(problems):
                order = np.random.default_rng(self.subset_seed).permutation(len(problems))[:size]
                problems = [problems[i] for i in sorted(order)]
            if not problems:
                raise ConfigError(f"task data {spec.source} ({spec.split}) has no problem with an answer")
            self._cache[name] = problems
        return self._cache[name]

    def training_pairs(self, dropout: StepDropout, seed: int) -> list[TrainingPair]:
        """One (prompt, target) per training problem, dropout drawn from `seed` (vary it per epoch)."""
        rng = np.random.default_rng(seed)
        pairs = []
        for problem in self.train_problems():
            steps = split_steps(problem.solution)
            draw = dropout.draw(len(steps), rng)
            target = self.format.target([steps[i] for i in draw.kept], problem.answer)
            pairs.append(TrainingPair(self.format.prompt(problem.problem), target, draw.kind,
                                      len(draw.kept), len(steps)))
        return pairs

    def test(self, solve: Callable[[MathQuery], Sequence[Attempt]]) -> dict[str, float]:
        problems, proto, metrics = self.test_problems(), self.protocol, {}
        self.test_samples = []  # each attempt with its verdict, beside the record (harness.samples)
        prompts = tuple(self.format.prompt(p.problem) for p in problems)
        for mode in proto.modes:
            query = MathQuery(prompts, self.format.mode_prefix(mode), proto.n_samples,
                              proto.temperature, proto.top_p)
            attempts = list(solve(query))
            if len(attempts) != len(problems):
                raise ValueError(f"solve answered {len(attempts)} of {len(problems)} prompts")
            metrics.update(self.score(problems, attempts, mode))
        return metrics

    def score(self, problems: Sequence[MathProblem], attempts: Sequence[Attempt],
              mode: str) -> dict[str, float]:
        greedy, passed, k = [], [], self.protocol.pass_k
        for problem, attempt in zip(problems, attempts):
            greedy.append(judge(self.grader, self.format.answer_of(attempt.greedy.text), problem.answer))
            right = None
            if k:
                right = sum(judge(self.grader, self.format.answer_of(s.text), problem.answer)
                            for s in attempt.samples)
                passed.append(pass_at_k(len(attempt.samples), right, k))
            getattr(self, "test_samples", []).append({
                "mode": mode, "target": problem.answer, "greedy": attempt.greedy.text, "greedy_correct": greedy[-1],
                "samples": [s.text for s in attempt.samples], "samples_correct": right})
        out = {f"greedy1_{mode}": 100.0 * float(np.mean(greedy)),
               f"gen_tokens_{mode}": float(np.mean([a.greedy.n_tokens for a in attempts])),
               f"steps_{mode}": float(np.mean([self.format.count_steps(a.greedy.text) for a in attempts]))}
        if k:
            out[f"pass{k}_{mode}"] = 100.0 * float(np.mean(passed))
        return out
