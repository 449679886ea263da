"""The question sets of Trace's Tables 1 and 2: BIG-Bench Hard, MMLU, GPQA, GSM8K. Loading, the
papers' splits, scoring, the student model, concurrent evaluation, and which protocol each Table 2
dataset uses (`tasks.trace_paper.textgrad_tasks.textgrad_task`, the target of configs/task/bbh_textgrad.yaml).

    from tasks.trace_paper.bbh import load_bbh, paper_splits, score_bbh
    examples = load_bbh("navigate", "../shared/data/bbh")       # or a hub id: "maveriq/bigbenchhard"
    splits = paper_splits(examples)                             # first 15 train, next 5 val, rest test
    score_bbh("(B)", "so the answer is (B).")                   # True: options compare on the letter

    python -m harness.optimize task=bbh_textgrad task.dataset=word_sorting optimizer=textgrad llm=openai

The traced agent lives in `tasks.trace_paper.bbh_agent`, the Table 2 workflows in
`tasks.trace_paper.textgrad_tasks`. `datasets` is imported only for a hub id. Facts: specs/trace.md
§4.3 and §4.5; ../shared/data/bbh/SOURCE.md.
"""
from __future__ import annotations

import json
import random
import re
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

from harness.api import ConfigError

# The 23 tasks of the BBH paper (Suzgun et al.), grouped as Trace's Table 1 groups them. Two of
# them come as three files each (3, 5 and 7 objects): 27 subtask files in all.
NLP_TASKS = ("causal_judgement", "date_understanding", "disambiguation_qa", "formal_fallacies",
             "hyperbaton", "movie_recommendation", "penguins_in_a_table",
             "reasoning_about_colored_objects", "ruin_names", "salient_translation_error_detection",
             "snarks", "sports_understanding")
ALGORITHMIC_TASKS = ("boolean_expressions", "dyck_languages", "geometric_shapes", "logical_deduction",
                     "multistep_arithmetic_two", "navigate", "object_counting", "temporal_sequences",
                     "tracking_shuffled_objects", "web_of_lies", "word_sorting")
_SIZES = ("three_objects", "five_objects", "seven_objects")
_IN_SIZES = ("logical_deduction", "tracking_shuffled_objects")
SUBTASKS: dict[str, str] = {  # subtask file name -> its task (of the 23)
    sub: task for task in NLP_TASKS + ALGORITHMIC_TASKS
    for sub in ([f"{task}_{size}" for size in _SIZES] if task in _IN_SIZES else [task])}

BBH_HUB = "maveriq/bigbenchhard"  # Trace's source: one config per subtask, split "train"
BBH_DATA = "../shared/data/bbh"  # the local copy (see its SOURCE.md)
REPO = Path(__file__).resolve().parents[2]  # tasks/<paper>_paper/<module>.py

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Example:
    question: str
    answer: str


@dataclass(frozen=True)
class Splits:
    train: tuple[Example, ...]
    val: tuple[Example, ...]
    test: tuple[Example, ...]

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def group_of(subtask: str) -> str:
    """'nlp' or 'algorithmic' (Table 1's two column groups)."""
    if subtask not in SUBTASKS:
        raise ConfigError(f"task.subtask: unknown BBH subtask {subtask!r} (one of: {', '.join(SUBTASKS)})")
    return "nlp" if SUBTASKS[subtask] in NLP_TASKS else "algorithmic"


def paper_splits(examples: Sequence[Example], train: int = 15, val: int = 5) -> Splits:
    """Trace's BBH protocol: file order, no shuffling; the first `train`, the next `val`, the rest."""
    return Splits(tuple(examples[:train]), tuple(examples[train:train + val]), tuple(examples[train + val:]))


def textgrad_splits(examples: Sequence[Example]) -> Splits:
    """TextGrad's BBH prompt-optimization splits: examples 0-49 train, 50-149 val, 150- test."""
    return paper_splits(examples, train=50, val=100)


# -- loading ----------------------------------------------------------------------------------

def resolve(source: str | Path) -> Path | None:
    """A local path (as given, or relative to the repository root), or None for a hub id."""
    for candidate in (Path(source), REPO / source):
        if candidate.exists():
            return candidate
    return None


def _hub(hub_id: str, name: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of a hub dataset. Script-based datasets (both BBH copies are) no longer run under
    datasets>=4; the hub's automatic parquet conversion of them is tried next."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise ConfigError(f"{hub_id!r} is not a local path, and loading it from the hub needs "
                          "`datasets` (pip install -e '.[bbh]')") from None
    error: Exception | None = None
    for revision in (None, "refs/convert/parquet"):
        try:
            return [dict(row) for row in load_dataset(hub_id, name, split=split, revision=revision)]
        except Exception as exc:  # offline, gated, missing, or a script the library will not run
            error = error or exc
    first = str(error).splitlines()[0] if str(error) else ""
    raise ConfigError(f"cannot load {hub_id!r} ({name}, {split}) from the hub: {type(error).__name__}: "
                      f"{first}; give a local path instead") from None


def _rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl file, or of a .json file holding a list or {"examples": [...]}."""
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    return data["examples"] if isinstance(data, dict) else data


def load_bbh(subtask: str, source: str | Path) -> list[Example]:
    """One BBH subtask in file order: `<source>/<subtask>.json` or the hub id's config `subtask`."""
    group_of(subtask)
    local = resolve(source)
    if local is not None:
        path = local / f"{subtask}.json" if local.is_dir() else local
        if not path.exists():
            raise ConfigError(f"task.source: no {path.name} in {local}")
        rows = _rows(path)
    else:
        rows = _hub(str(source), subtask, "train")
    return [Example(str(r["input"]), str(r["target"])) for r in rows]


def _local_rows(source: str | Path, name: str) -> list[dict[str, Any]] | None:
    """`<dir>/<name>.jsonl` (or .json), or the file itself; None when `source` is not local."""
    local = resolve(source)
    if local is None:
        return None
    if local.is_file():
        return _rows(local)
    for path in (local / f"{name}.jsonl", local / f"{name}.json"):
        if path.exists():
            return _rows(path)
    raise ConfigError(f"task.source: neither {name}.jsonl nor {name}.json in {local}")


def multiple_choice(question: str, options: Sequence[str]) -> str:
    """A four-option question that asks for a final line `Answer: <letter>` (TextGrad's format)."""
    lines = "\n".join(f"{'ABCD'[i]}) {o}" for i, o in enumerate(options))
    return (f"Answer the multiple-choice question below. Reason step by step; the last line of your "
            f"reply must be `Answer: X`, where X is one of A, B, C, D.\n\n{question}\n\n{lines}")


def load_mmlu(subject: str, source: str | Path = "cais/mmlu") -> list[Example]:
    """An MMLU subject's test questions (fields question, choices, answer index), answer = letter."""
    rows = _local_rows(source, subject)
    rows = _hub(str(source), subject, "test") if rows is None else rows
    return [Example(multiple_choice(r["question"], r["choices"]), "ABCD"[int(r["answer"])]) for r in rows]


GPQA_SHUFFLE_SEED = 42  # textgrad reseeds Python's RNG with 42 before shuffling each question


def load_gpqa(subset: str = "gpqa_diamond", source: str | Path = "Idavidrein/gpqa") -> list[Example]:
    """GPQA (a gated hub dataset: log in, or give a local CSV-derived .jsonl with its column names).
    Options in textgrad's order: the three incorrect ones, then the correct one, shuffled by a
    generator reseeded with 42 for every question, so every question gets the same permutation
    (the correct option is always C)."""
    rows = _local_rows(source, subset)
    rows = _hub(str(source), subset, "train") if rows is None else rows
    examples = []
    for r in rows:
        options = [str(r[k]).strip() for k in ("Incorrect Answer 1", "Incorrect Answer 2",
                                               "Incorrect Answer 3", "Correct Answer")]
        random.Random(GPQA_SHUFFLE_SEED).shuffle(options)
        examples.append(Example(multiple_choice(r["Question"], options),
                                "ABCD"[options.index(str(r["Correct Answer"]).strip())]))
    return examples


def load_gsm8k(source: str | Path = "openai/gsm8k") -> Splits:
    """GSM8K with DSPy's splits (as TextGrad uses them): train and test each shuffled with
    Random(0); train = 200 of train, val = the next 300, test = all of test. Answer = the number
    after '####'."""
    def parse(rows: list[dict[str, Any]]) -> list[Example]:
        out = [Example(f"Question: {r['question']}", r["answer"].split("####")[-1].strip().replace(",", ""))
               for r in rows]
        random.Random(0).shuffle(out)
        return out

    rows = {s: _local_rows(source, s) for s in ("train", "test")}
    rows = {s: _hub(str(source), "main", s) if r is None else r for s, r in rows.items()}
    train, test = parse(rows["train"]), parse(rows["test"])
    return Splits(tuple(train[:200]), tuple(train[200:500]), tuple(test))


# -- scoring ----------------------------------------------------------------------------------

_OPTION = re.compile(r"\([A-Z]\)")
_ANSWER_LETTER = re.compile(r"(?i)answer\s*:\s*\(?([A-D])\b")


def normalize(text: str) -> str:
    """Whitespace only: case and punctuation still count, as in the paper's exact match."""
    return " ".join(str(text).split())


def score_bbh(target: str, prediction: Any) -> bool:
    """Table 1's metric: a target like "(B)" is compared with the last "(X)" in the prediction;
    any other target must equal the whole prediction (after `normalize`)."""
    prediction = "" if prediction is None else str(prediction)
    if _OPTION.search(target):
        found = _OPTION.findall(prediction)
        return bool(found) and found[-1] == target.strip()
    return normalize(prediction) == normalize(target)


def score_bbh_exact(target: str, prediction: Any) -> bool:
    """The paper's script's metric: the last "(X)" for option targets, else plain `==` (a reply
    with extra whitespace, or a number where a string is expected, is wrong)."""
    if _OPTION.search(target):
        found = _OPTION.findall("" if prediction is None else str(prediction))
        return bool(found) and found[-1] == target
    return prediction == target


def score_letter(target: str, text: Any) -> bool:
    """MMLU / GPQA, ours: the letter of the last `Answer: X` line."""
    found = _ANSWER_LETTER.findall(str(text))
    return bool(found) and found[-1].upper() == target


_FIRST_LETTER = re.compile(r"(?i)Answer\s*:\s*([A-D])")


def first_answer_letter(text: Any) -> str | None:
    """textgrad's reading of a multiple-choice reply: the letter of the *first* `Answer: X`, as
    written (a lower-case letter does not match an upper-case target)."""
    match = _FIRST_LETTER.search(str(text))
    return match.group(1) if match else None


def score_letter_first(target: str, text: Any) -> bool:
    """MMLU / GPQA in Table 2 (textgrad's tasks): the first `Answer: X` match."""
    return first_answer_letter(text) == target


def parse_integer(text: Any) -> int | None:
    """The integer in the last whitespace-separated token that has a digit (what TextGrad's
    object-counting and GSM8K checks read), or None."""
    tokens = [t for t in str(text).split() if any(c.isdigit() for c in t)]
    if not tokens:
        return None
    digits = "".join(c for c in tokens[-1].split(".")[0] if c.isdigit())
    return int(digits) if digits else None


def score_integer(target: str, text: Any) -> bool:
    value = parse_integer(text)
    return value is not None and value == parse_integer(target)


def score_sorted_words(target: str, text: Any) -> bool:
    """Word sorting: the words after the last `Answer:` (or of the last line) equal the target's,
    ignoring case and commas."""
    text = str(text)
    tail = text.rsplit("Answer:", 1)[1] if "Answer:" in text else (text.strip().splitlines() or [""])[-1]
    words = lambda s: s.replace(",", " ").lower().split()  # noqa: E731
    return words(tail) == words(target)


# -- the student model ------------------------------------------------------------------------

def student_llm(base: Any, model: str | None = None, **params: Any) -> Any:
    """The model that answers the questions, built from the optimizer's LLM settings (`base`, the
    instantiated `llm` config) with another `model` name and/or request `params` if given.

    Same endpoint, key, retries, concurrency and cache file as `base`. A scripted test double
    stays what it is (it answers whatever it is asked), so smoke runs need no endpoint.
    """
    from trace_core.llm import LLM, CachedLLM, OpenAIChat

    if not isinstance(base, LLM):
        raise ConfigError("this task asks a student model: add llm=openai (or llm=scripted for a smoke run)")
    if model is None and not params:
        return base
    if isinstance(base, (CachedLLM, OpenAIChat)):
        return base.variant(model, **params)  # same endpoint, key variable, limits, cache and mode
    return base  # a test double


def concurrency(llm: Any, default: int = 4) -> int:
    """How many requests the client lets run at once (a cache's inner client decides)."""
    while llm is not None:
        if hasattr(llm, "max_concurrency"):
            return int(llm.max_concurrency)
        llm = getattr(llm, "inner", None)
    return default


def evaluate_all(fn: Callable[[T], R], items: Iterable[T], workers: int, desc: str = "") -> list[R]:
    """`[fn(x) for x in items]`, run by a pool of `workers` threads, results in input order.

    The LLM client bounds the requests in flight; a killed run loses nothing it paid for, because
    every reply is in the response cache and a rerun meets the same requests again.
    """
    from harness.progress import bar  # off where the run says so (progress=false, auto off a terminal)

    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            bar(total=len(items), desc=desc, leave=False) as shown:
        futures = [pool.submit(fn, item) for item in items]
        for _ in as_completed(futures):
            shown.update()
        return [future.result() for future in futures]
