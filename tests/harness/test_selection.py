"""The dropout-p choice (issue 29): the rule in the experiment's `selection:` block, applied to records."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.selection import choice_markdown, choose

RULE = {"metric": "validation/{mode}/1_optimal_64", "modes": ["fast", "slow"], "tie_within": 1.0,
        "tie_break": "min_mode", "seeds": [1, 2], "p": {"a": [0.5, 0.5], "b": [0.2, 0.8], "c": [0.0, 1.0]}}


def records(scores):
    """scores: {(candidate, seed): (fast, slow)} -> rows as scripts/make_tables.py reads them."""
    return pd.DataFrame([{"method": f"maze7/{c}", "seed": s, "validation/fast/1_optimal_64": fast,
                          "validation/slow/1_optimal_64": slow} for (c, s), (fast, slow) in scores.items()])


def test_the_highest_mean_over_seeds_of_the_mean_over_modes_is_chosen():
    runs = records({("a", 1): (40, 60), ("a", 2): (50, 70),    # score 55
                    ("b", 1): (80, 50), ("b", 2): (90, 40),    # score 65
                    ("c", 1): (95, 10), ("c", 2): (85, 20)})   # score 52.5
    choice = choose(runs, RULE)
    assert choice.chosen == "b"
    row = choice.scores.set_index("candidate").loc["b"]
    assert (row.fast, row.slow, row.score, row.worst_mode) == (85, 45, 65, 45)
    assert row.fast_sem == pytest.approx(5.0)
    text = choice_markdown(choice, RULE, "configs/experiment/x.yaml")
    assert "| b **(chosen)** | (0.2, 0.8) | 85.0 ± 5.0 | 45.0 ± 5.0 | 65.0 | 45.0 | 1, 2 |" in text


def test_a_tie_goes_to_the_candidate_whose_worst_mode_is_best():
    runs = records({("a", 1): (60, 60), ("a", 2): (60, 60),    # score 60, worst 60
                    ("b", 1): (90, 30.6), ("b", 2): (90, 30.6),  # score 60.3, worst 30.6: tied with a
                    ("c", 1): (10, 10), ("c", 2): (10, 10)})
    choice = choose(runs, RULE)
    assert choice.chosen == "a" and "2 candidates within 1.0 points" in choice.why


def test_no_choice_until_every_candidate_has_every_seed():
    runs = records({("a", 1): (60, 60), ("a", 2): (60, 60), ("b", 1): (90, 90), ("c", 1): (1, 1), ("c", 2): (1, 1)})
    choice = choose(runs, RULE)
    assert choice.chosen is None and "b lacks seed(s) 2" in choice.why
    assert "Not chosen yet" in choice_markdown(choice, RULE, "x.yaml")


def test_records_without_the_rules_metric_choose_nothing():
    runs = pd.DataFrame([{"method": c, "seed": s, "validation/fast/1_optimal_4": 0.0} for c in "abc" for s in (1, 2)])
    choice = choose(runs, RULE)  # smoke runs answer 4 samples: no 1_optimal_64
    assert choice.chosen is None and "lacks seed(s) 1, 2" in choice.why


def test_a_candidate_whose_records_ran_another_p_than_the_rule_says_is_an_error():
    # The rule's `p:` describes each candidate for the table and the figure; the records say what ran.
    # If a model config's p was changed after the rule was written, the table must not print the old p.
    runs = records({("a", 1): (60, 60), ("a", 2): (60, 60), ("b", 1): (90, 90), ("b", 2): (90, 90),
                    ("c", 1): (1, 1), ("c", 2): (1, 1)})
    runs["config"] = [{"model": {"dropout": {"p": [0.5, 0.5] if m.endswith("/a") else [0.3, 0.7]}}}
                      for m in runs["method"]]
    with pytest.raises(ValueError, match=r"b's records ran with p = \(0.3, 0.7\).*rule says \(0.2, 0.8\)"):
        choose(runs, RULE)
    runs["config"] = [{"model": {"dropout": {"p": RULE["p"][m[-1]]}}} for m in runs["method"]]
    assert choose(runs, RULE).chosen == "b"
