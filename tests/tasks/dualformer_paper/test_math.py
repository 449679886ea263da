"""MATH as step-structured solutions: loading, step splitting, step dropout, answers, scoring.

Fixtures: tests/data/math/ (our own small problems in MATH's two file formats). The checks on the
real data set run only where ../shared/data/math exists.
"""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from harness.api import ConfigError
from support import DATA, ROOT
from tasks.dualformer_paper.math import (Attempt, DataSpec, EvalProtocol, Generated, MathQuery, MathTask,
                                         SolutionFormat, StepDropout, load_problems, pass_at_k, split_steps)
from tasks.dualformer_paper.math_answers import boxed_spans, is_equiv, last_boxed, normalize, unbox
from tasks.dualformer_paper.math_sympy import sympy_equal

FIXTURES = DATA / "math"
SHARED = ROOT.parent / "shared" / "data" / "math"


def fixture_task(**kw) -> MathTask:
    return MathTask(train=DataSpec(str(FIXTURES / "train.jsonl")),
                    test_data=DataSpec(str(FIXTURES / "test.jsonl"), split="test"), **kw)


# ----------------------------------------------------------------------------- loading

def test_loader_reads_both_file_formats():
    train = load_problems(DataSpec(str(FIXTURES / "train.jsonl")))
    assert len(train) == 12 and train[0].id == "train/fixture/0.json"
    assert train[0].answer == "11" and train[0].subject == "Prealgebra" and train[0].level == 1
    assert train[11].level == 0  # "Level ?"
    test = load_problems(DataSpec(str(FIXTURES), split="test"))  # a folder with test.jsonl
    assert [p.answer for p in test] == ["12", "4", "\\frac{1}{2}", "8"] and test[2].level == 2


def test_a_repository_path_loads_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # smoke mode names the fixtures as a repository path (configs/mode/model/smoke_lm.yaml)
    problems = load_problems(DataSpec("tests/data/math/train.jsonl"))
    assert len(problems) == 12 and problems[0].answer == "11"


def test_loader_reads_the_original_math_tree_and_json(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "train.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows[:3]):
        folder = tmp_path / "train" / ("algebra" if i < 2 else "geometry")
        folder.mkdir(parents=True, exist_ok=True)
        fields = {k: row[k] for k in ("problem", "level", "type", "solution")}
        (folder / f"{10 - i}.json").write_text(json.dumps(fields))
    tree = load_problems(DataSpec(str(tmp_path), split="train"))
    assert [p.id for p in tree] == ["train/algebra/9.json", "train/algebra/10.json", "train/geometry/8.json"]
    (tmp_path / "list.json").write_text(json.dumps(rows[:2]))
    assert [p.answer for p in load_problems(DataSpec(str(tmp_path / "list.json")))] == ["11", "4"]


def test_loader_errors_are_one_clear_line(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no such file"):
        load_problems(DataSpec(str(tmp_path / "missing.jsonl")))
    with pytest.raises(ConfigError, match="test.jsonl"):
        load_problems(DataSpec(str(tmp_path), split="test"))
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(ConfigError, match="install `datasets`"):
        load_problems(DataSpec("some-org/some-math"))


def test_hub_ids_load_through_datasets_and_respect_offline_mode(tmp_path):
    pytest.importorskip("datasets")
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    code = ("from tasks.dualformer_paper.math import DataSpec, load_problems\n"
            "try:\n    load_problems(DataSpec('HuggingFaceH4/MATH-500', split='test'))\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                         cwd=ROOT).stdout
    assert out.startswith("ConfigError task data: cannot load HuggingFaceH4/MATH-500 split test")
    assert "HF_DATASETS_OFFLINE is set" in out and "\n" not in out.strip()  # one line, no network wait


# ----------------------------------------------------------------------------- steps

EXPECTED_STEPS = {
    2: ["Two pens cost $2 \\cdot \\$1.25 = \\$2.50$.",  # `\$` is a dollar sign, not math
        "Adding the notebook gives a total of $\\$2.50 + \\$2.50 = \\$5.00$."],
    3: ["We use the common denominator 6: \\[\\frac{1}{2} + \\frac{1}{3} = \\frac{3}{6} + \\frac{2}{6}.\\]",
        "Adding the numerators gives $\\frac{5}{6}$."],  # display math ending in "." ends a step
    4: ["We multiply out: \\begin{align*} (x+1)^2 &= (x+1)(x+1) \\\\ &= x^2 + 2x + 1. \\end{align*}",
        "So the answer is $x^2+2x+1$."],
    5: ["The divisors of 12 are the numbers that divide it evenly, i.e. 1, 2, 3, 4, 6, and 12.",
        "Counting them, there are $6$ divisors."],  # "i.e." is no sentence end; a blank line is
    6: ['[asy] draw((0,0)--(3,0)--(3,3)--(0,3)--cycle); label("3", (1.5,0), S); [/asy] '
        "The area of a square is the side length squared.", "So the area is $3^2 = 9$."],
    9: ["What do the angles of a triangle add up to?", "They add up to $180^\\circ$.",
        "So the third angle is $180^\\circ - 50^\\circ - 60^\\circ = 70^\\circ$."],
    10: ["Multiplying, 2.5 times 4 is 10.", "Thus the answer is $10$."],  # "2.5" is no sentence end
}


@pytest.mark.parametrize("index", sorted(EXPECTED_STEPS))
def test_split_steps_on_fixtures(index):
    problem = load_problems(DataSpec(str(FIXTURES / "train.jsonl")))[index]
    assert split_steps(problem.solution) == EXPECTED_STEPS[index]


def test_every_fixture_splits_into_unboxed_steps_that_cover_the_solution():
    for problem in load_problems(DataSpec(str(FIXTURES / "train.jsonl"))):
        steps = split_steps(problem.solution)
        assert len(steps) >= 2 and not any("\\boxed" in s or "\n" in s for s in steps)
        squeeze = lambda text: "".join(text.split())  # noqa: E731
        assert squeeze(" ".join(steps)) == squeeze(unbox(problem.solution))  # nothing lost, nothing added


def test_solution_format_and_mode_prefixes():
    fmt = SolutionFormat()
    target = fmt.target(["First.", "Second."], "\\frac{1}{2}")
    assert target == "Step: First.\nStep: Second.\nAnswer: $\\boxed{\\frac{1}{2}}$"
    assert target.startswith(fmt.mode_prefix("slow"))
    assert fmt.target([], "3").startswith(fmt.mode_prefix("fast"))
    assert fmt.mode_prefix("auto") == "" and fmt.answer_of(target) == "\\frac{1}{2}"
    assert fmt.answer_of("Step: x\nAnswer: 7") == "7" and fmt.answer_of("no answer") is None
    assert fmt.count_steps(target) == 2
    with pytest.raises(ConfigError, match="mode"):
        fmt.mode_prefix("turbo")


# ----------------------------------------------------------------------------- dropout

def test_dropout_drops_exactly_steps_and_always_keeps_the_answer():
    task, fmt = fixture_task(), SolutionFormat()
    full = {p.prompt: p.target.splitlines() for p in task.training_pairs(StepDropout.none(), seed=0)}
    for seed in range(20):
        for pair in task.training_pairs(StepDropout(p=0.4), seed=seed):
            lines, original = pair.target.splitlines(), full[pair.prompt]
            assert lines[-1] == original[-1] and lines[-1].startswith(fmt.answer_prefix)  # the answer
            kept = iter(original[:-1])
            assert all(line in kept for line in lines[:-1])  # an in-order subsequence of the steps
            assert len(lines) - 1 == pair.kept and len(original) - 1 == pair.steps
            assert pair.kind != "full" or pair.kept == pair.steps
            assert pair.kind != "fast" or pair.kept == 0


@pytest.mark.parametrize("p, mix", [(0.1, (0.5, 0.25, 0.25)), (0.3, (0.2, 0.5, 0.3)), (0.4, (0, 1, 0))])
def test_dropout_frequencies_match_the_configuration(p, mix):
    dropout, rng, n, steps = StepDropout(p=p, mix=mix), np.random.default_rng(0), 20000, 6
    draws = [dropout.draw(steps, rng) for _ in range(n)]
    for kind, weight in zip(("full", "partial", "fast"), mix):
        share = sum(d.kind == kind for d in draws) / n
        assert abs(share - weight) < 4 * math.sqrt(weight * (1 - weight) / n) + 1e-9, kind
    partial = [d for d in draws if d.kind == "partial"]
    kept = sum(len(d.kept) for d in partial) / (steps * len(partial))
    assert abs(kept - (1 - p)) < 4 * math.sqrt(p * (1 - p) / (steps * len(partial)))
    per_position = np.mean([[i in d.kept for i in range(steps)] for d in partial], axis=0)
    assert np.all(np.abs(per_position - (1 - p)) < 0.03)  # every step, first to last, alike


def test_dropout_is_drawn_anew_per_epoch_and_reproducible():
    task, dropout = fixture_task(), StepDropout(p=0.3, mix=(0.2, 0.5, 0.3))
    epoch = lambda seed: [p.target for p in task.training_pairs(dropout, seed=seed)]  # noqa: E731
    assert epoch(1) == epoch(1) and epoch(1) != epoch(2)


def test_p_zero_is_the_no_dropout_baseline_and_bad_settings_are_refused():
    rng = np.random.default_rng(0)
    assert all(StepDropout(p=0.0).draw(5, rng).kept == tuple(range(5)) for _ in range(100))
    bad_settings = [dict(p=1.5), dict(p=-0.1), dict(mix=(0.5, 0.5, 0.5)), dict(mix=(1.2, -0.2, 0)),
                    dict(mix=(1, 0))]
    for bad in bad_settings:
        with pytest.raises(ConfigError, match="dropout"):
            StepDropout(**bad)


# ----------------------------------------------------------------------------- answers

def test_boxes_are_found_unwrapped_and_the_last_one_is_the_answer():
    text = "So $x=\\boxed{\\frac{1}{2}}$ or \\boxed 3 and \\fbox{\\{1, 2\\}}."
    assert [c for _, _, c in boxed_spans(text)] == ["\\frac{1}{2}", "3", "\\{1, 2\\}"]
    assert last_boxed(text) == "\\{1, 2\\}" and last_boxed("no box") is None
    assert unbox(text) == "So $x=\\frac{1}{2}$ or 3 and \\{1, 2\\}."
    assert last_boxed("\\boxed{unclosed") is None


EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"), ("\\dfrac12", "1/2"), ("\\tfrac{3}{4}", ".75"), ("-\\frac{3}{4}", "-0.75"),
    ("10\\%", "10"), ("5 \\text{ cm}", "5"), ("12 inches", "12"), ("90^\\circ", "90"), ("90^{\\circ}", "90"),
    ("\\$5.00", "5"), ("1,000", "1000"), ("\\$1,\\!000", "1000"), ("x = 3", "3"), ("\\boxed{5}", "5"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"), ("(\\tfrac12, 2)", "(0.5,2)"),
    ("\\text{(B)}", "B"), ("\\text{Monday}", "monday"), ("1, 2", "2, 1"), ("\\{1,2\\}", "\\{2,1\\}"),
    ("\\sqrt2", "\\sqrt{2}"), ("\\frac{\\sqrt2}{2}", "\\sqrt{2}/2"),
    ("(-\\infty, 3)", "(-\\infty,3)"), ("\\displaystyle\\frac{1}{3}", "\\frac13"),
]
SYMPY_EQUIVALENT = [
    ("2\\sqrt{2}", "\\sqrt{8}"), ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"), ("8+4i", "4i+8"),
    ("x^2+2x+1", "(x+1)^2"), ("2\\pi", "\\pi\\cdot 2"), ("3\\sqrt{3}", "\\sqrt{27}"),
    ("\\frac{x}{2}", "0.5x"), ("\\sqrt[3]{8}", "2"), ("y = 2x + 3", "y=3+2x"),
]
DIFFERENT = [
    ("3", "-3"), ("(1,2]", "(1,2)"), ("(1,2)", "(2,1)"), ("0.333", "\\frac13"), ("\\pi", "3.14"),
    ("a", "A"), ("5", "6"), ("(1)+(2)", "(2)+(1)+1"), ("1, 2", "1, 2, 3"), ("x^2", "x^3"),
    ("\\sqrt{2}", "2"), ("", "0"), (None, "1"),
]


@pytest.mark.parametrize("a, b", EQUIVALENT)
def test_equivalent_answers(a, b):
    assert is_equiv(a, b) and is_equiv(b, a)


@pytest.mark.parametrize("a, b", SYMPY_EQUIVALENT)
def test_equivalent_answers_that_need_sympy(a, b):
    pytest.importorskip("sympy")
    assert normalize(a) != normalize(b) and is_equiv(a, b)


@pytest.mark.parametrize("a, b", DIFFERENT)
def test_different_answers(a, b):
    assert not is_equiv(a, b)


HOSTILE = ["10^{10^{10}}", "2^{99999}", "2^{1000*1000*1000}", "2^{(3^{40})}", "9" * 60, "x" * 500,
           "__import__('os').system('true')", "exit()", "\\input{/etc/passwd}"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_or_huge_answers_are_refused_quickly(hostile):
    started = time.perf_counter()
    assert not is_equiv(hostile, "1")
    assert time.perf_counter() - started < 1.0


def test_sympy_tier_gives_up_at_its_time_limit():
    pytest.importorskip("sympy")
    slow = "(x+1)^{40}(y+2)^{40}-(x+2)^{40}(y+1)^{40}"  # about 10 s of simplify without a limit
    assert sympy_equal("2x", "x+x")  # sympy imported before the clock starts
    started = time.perf_counter()
    assert sympy_equal(slow, "0", seconds=0.05) is False
    assert time.perf_counter() - started < 1.0


# ----------------------------------------------------------------------------- the task

def oracle(right: int, n: int, answers: dict[str, str], fmt: SolutionFormat):
    """A test double for `solve`: greedy is right, `right` of `n` samples are right."""
    def solve(query: MathQuery) -> list[Attempt]:
        out = []
        for prompt in query.prompts:
            answer = answers[prompt]
            good = Generated(f"{query.prefix} x\n{fmt.answer_prefix}$\\boxed{{{answer}}}$", 9)
            bad = Generated(f"{query.prefix} x\n{fmt.answer_prefix}$\\boxed{{{answer}0}}$", 5)
            out.append(Attempt(good, (good,) * right + (bad,) * (n - right)))
        return out
    return solve


def test_test_scores_greedy_pass_at_k_and_length_per_mode():
    task = fixture_task(protocol=EvalProtocol(n_samples=4, pass_k=2))
    answers = {task.format.prompt(p.problem): p.answer for p in task.test_problems()}
    metrics = task.test(oracle(1, 4, answers, task.format))
    assert metrics["greedy1_slow"] == 100.0 and metrics["greedy1_fast"] == 100.0
    assert metrics["pass2_slow"] == pytest.approx(100 * pass_at_k(4, 1, 2)) == pytest.approx(50.0)
    assert metrics["gen_tokens_slow"] == 9 and metrics["steps_slow"] == 1 and metrics["steps_fast"] == 0
    assert set(metrics) == {f"{m}_{mode}" for m in ("greedy1", "pass2", "gen_tokens", "steps")
                            for mode in ("slow", "fast")}


def test_pass_at_k_estimator():
    assert pass_at_k(20, 0, 20) == 0.0 and pass_at_k(20, 1, 20) == 1.0
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4) and pass_at_k(4, 3, 2) == 1.0
    with pytest.raises(ConfigError):
        pass_at_k(3, 1, 5)


def test_task_is_lazy_and_limits_its_test_set_to_the_same_problems_for_every_seed():
    lazy = MathTask(train=DataSpec("/nonexistent/train.jsonl"), test_data=DataSpec("/nonexistent/test.jsonl"))
    assert not hasattr(lazy, "evaluate")  # a harness.train task; nothing is read until it is used
    with pytest.raises(ConfigError, match="no such file"):
        lazy.test_problems()
    task = fixture_task(limit=2, n_train=5)
    assert len(task.test_problems()) == 2 and len(task.train_problems()) == 5
    assert task.test_problems() == fixture_task(limit=2, seed=7).test_problems()  # same for every seed
    with pytest.raises(ConfigError, match="pass_k"):
        fixture_task(protocol=EvalProtocol(n_samples=2, pass_k=20))


# ----------------------------------------------------------------------------- the real data

@pytest.mark.skipif(not SHARED.is_dir(), reason="the MATH copy in ../shared/data/math is not here")
def test_real_math_splits_and_math500_answers_match_their_boxes():
    train = load_problems(DataSpec(str(SHARED / "train.jsonl")))
    assert len(train) == 7500 and sum(not p.answer for p in train) == 2  # two empty boxes in MATH
    steps = [split_steps(p.solution) for p in train[::10]]
    assert all(steps) and 3 < np.mean([len(s) for s in steps]) < 7
    assert not any("\\boxed" in s for ss in steps for s in ss)
    math500 = load_problems(DataSpec(str(SHARED / "math500"), split="test"))
    assert len(math500) == 500
    assert all(is_equiv(last_boxed(p.solution), p.answer) for p in math500)
