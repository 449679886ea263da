"""BBH and the Table 2 datasets: loading, the papers' splits, scoring, the student model, concurrent
evaluation, and whole Table 1 runs against a real OpenAI-compatible server on loopback (one
optimizer call per step, the student on its own model, resuming from the cache)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from fake_openai import serving
from harness.api import ConfigError
from harness.optimize import run
from support import DATA, ROOT, compose_run
from tasks.trace_paper import bbh, textgrad_tasks
from trace_core import graph_context
from trace_core.llm import CachedLLM, LLMError, OpenAIChat, ScriptedLLM

FIXTURES = DATA / "bbh"
SHARED = ROOT.parent / "shared" / "data" / "bbh"
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def test_the_23_tasks_come_as_27_subtask_files_in_two_groups():
    assert len(bbh.NLP_TASKS) == 12 and len(bbh.ALGORITHMIC_TASKS) == 11
    assert len(bbh.SUBTASKS) == 27 and len(set(bbh.SUBTASKS.values())) == 23
    assert bbh.group_of("logical_deduction_five_objects") == "algorithmic"
    assert bbh.group_of("snarks") == "nlp"
    with pytest.raises(ConfigError, match="unknown BBH subtask"):
        bbh.group_of("chess")


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/bbh is not on this machine")
def test_split_sizes_match_the_local_copy_described_in_source_md():
    table = dict(re.findall(r"^\| (\w+) \| (\d+) \| yes \|$", (SHARED / "SOURCE.md").read_text(), re.M))
    assert set(table) == set(bbh.SUBTASKS)
    for subtask, count in table.items():
        splits = bbh.paper_splits(bbh.load_bbh(subtask, SHARED))
        assert splits.sizes() == (15, 5, int(count) - 20), subtask
    assert bbh.paper_splits(bbh.load_bbh("penguins_in_a_table", SHARED)).sizes() == (15, 5, 126)


def test_loader_keeps_file_order_and_splits_without_shuffling():
    rows = json.loads((FIXTURES / "date_understanding.json").read_text())["examples"]
    examples = bbh.load_bbh("date_understanding", FIXTURES)
    assert [e.question for e in examples] == [r["input"] for r in rows]
    splits = bbh.paper_splits(examples)
    assert splits.sizes() == (15, 5, 6)
    assert splits.train[0] == examples[0] and splits.val[0] == examples[15] and splits.test[0] == examples[20]
    assert bbh.textgrad_splits(bbh.load_bbh("object_counting", FIXTURES)).sizes() == (50, 100, 10)
    with pytest.raises(ConfigError, match="no navigate.json"):
        bbh.load_bbh("navigate", FIXTURES / "mmlu")


def test_the_other_loaders_read_local_copies():
    mmlu = bbh.load_mmlu("machine_learning", FIXTURES / "mmlu")
    assert [e.answer for e in mmlu] == ["B", "C", "A", "D"] and "B) Classification" in mmlu[0].question
    gpqa = bbh.load_gpqa("gpqa_diamond", FIXTURES / "gpqa")
    assert all(f"{e.answer}) " in e.question for e in gpqa)
    assert {e.answer for e in gpqa} == {"C"}, "textgrad's order: one permutation (seed 42) for every question"
    assert [e.answer for e in gpqa] == [e.answer for e in bbh.load_gpqa("gpqa_diamond", FIXTURES / "gpqa")]
    gsm8k = bbh.load_gsm8k(FIXTURES / "gsm8k")
    assert gsm8k.sizes() == (8, 0, 5) and all(e.answer.isdigit() for e in gsm8k.train + gsm8k.test)


def test_a_repository_path_resolves_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs name fixtures as repository paths (tests/data/bbh)
    assert bbh.resolve("tests/data/bbh") == ROOT / "tests" / "data" / "bbh"
    assert bbh.resolve("lukaemon/bbh") is None  # a hub id


def test_scoring_compares_options_on_the_letter_and_the_rest_exactly():
    assert bbh.score_bbh("(B)", "It could be (A), but the answer is (B).")
    assert not bbh.score_bbh("(B)", "(B) or rather (C)") and not bbh.score_bbh("(B)", "B")
    assert bbh.score_bbh("syndrome therefrom", "  syndrome\ntherefrom ")
    assert not bbh.score_bbh("Yes", "yes") and not bbh.score_bbh("8", "8.") and not bbh.score_bbh("8", None)
    assert bbh.score_letter("C", "reasoning...\nAnswer: C") and not bbh.score_letter("C", "Answer: D")
    assert bbh.parse_integer("so 3 + 4 = 7 apples.") == 7 and bbh.parse_integer("none") is None
    assert bbh.score_integer("7", "Answer: 7") and not bbh.score_integer("7", "Answer: seven")
    assert bbh.score_sorted_words("amber cedar", "thinking\nAnswer: Amber, cedar")


def test_the_student_shares_the_endpoint_and_cache_with_another_model_name(tmp_path):
    chat = OpenAIChat("optimizer-model", base_url="http://127.0.0.1:9/v1", max_concurrency=7, temperature=0)
    base = CachedLLM(chat, tmp_path / "cache.sqlite")
    assert bbh.student_llm(base) is base
    student = bbh.student_llm(base, model="student-model", max_tokens=64)
    assert isinstance(student, CachedLLM) and student.path == base.path and student.model == "student-model"
    assert student.inner.base_url == chat.base_url and student.inner.max_concurrency == 7
    assert student.params == {"temperature": 0, "max_tokens": 64} and bbh.concurrency(student) == 7
    double = ScriptedLLM(replies=["x"])
    assert bbh.student_llm(double, model="other") is double
    with pytest.raises(ConfigError, match="llm=openai"):
        bbh.student_llm({})


def test_evaluation_keeps_order_and_the_clients_bound_on_requests_in_flight():
    with serving(responder=lambda m: m[-1]["content"].upper()) as server:
        server.delay_s = 0.05
        client = OpenAIChat("m", base_url=server.url, max_concurrency=3)
        out = bbh.evaluate_all(lambda q: client.complete([{"role": "user", "content": q}]).text,
                               [f"q{i}" for i in range(12)], workers=8)
    assert out == [f"Q{i}" for i in range(12)]
    assert 1 < server.max_in_flight <= 3


# -- whole Table 1 runs through the loopback server --------------------------------------------

def weekday_answer(question: str) -> str:
    """The right option of a date_understanding fixture question."""
    day, k = re.search(r"Today is (\w+)\. What day is it (\d+) days", question).groups()
    right = DAYS[(DAYS.index(day) + int(k)) % 7]
    return re.search(rf"\(([A-D])\) {right}", question).group(1)


def table1_responder(messages: list[dict]) -> str:
    """Student: the right option only when the prompt asks for the letter in parentheses (else the
    day's name). Optimizer: rewrite the template so that it asks for that."""
    user = messages[-1]["content"]
    if "#Variables" in messages[0]["content"]:
        name = re.search(r"\(str\) (prompt_template\d+)=", user).group(1)
        template = "Answer with the option letter in parentheses.\nQuestion: {question}\nAnswer:"
        return json.dumps({"reasoning": "ask for the letter", "suggestion": {name: template}})
    letter = weekday_answer(user)
    if "option letter in parentheses" in user:
        return f"Answer: ({letter})"
    day = re.search(rf"\({letter}\) (\w+)", user).group(1)
    return f"Answer: {day}"


def table1_overrides(server_url: str, cache: Path, optimizer: str = "optoprime") -> list[str]:
    return ["task=bbh", "task.subtask=date_understanding", f"optimizer={optimizer}", "mode=smoke",
            "llm=openai", f"llm.base_url={server_url}", f"llm.cache_path={cache}", "llm.model=loopback-model",
            "task.student.model=student-model", "llm.max_retries=0", "logger=none", "progress=false",
            "task.protocol=harness"]  # these runs pin our protocol: validation every step


def test_trace_row_one_optimizer_call_per_step_and_the_student_on_its_own_model(tmp_path):
    with serving(responder=table1_responder) as server:
        record = run(compose_run("optimize", table1_overrides(server.url, tmp_path / "c.sqlite"), tmp_path))
    models = [body["model"] for body in server.bodies]
    steps = len(record.curve)
    # One optimizer call per evaluated proposal; the cost counts every role's calls (student too).
    assert steps == 3 and models.count("loopback-model") == steps - 1
    assert record.cost.llm_calls == server.seen == len(models) and "student-model x" in record.cost.llm_models
    # Identical temperature-0 student requests (a validation question under an unchanged prompt) are
    # asked once per run.
    student_requests = steps * 6 + 6
    assert models.count("student-model") + record.cost.cache_hits == student_requests
    assert models.count("student-model") == record.metrics["test/student_calls"] < student_requests
    assert [p["score"] for p in record.curve] == [0.0, 1.0, 1.0], "validation accuracy per step"
    assert record.metrics["test/acc"] == 100.0 and record.metrics["test/acc_nlp"] == 100.0
    prompt = next(b for b in server.bodies if b["model"] == "loopback-model")["messages"][-1]["content"]
    # The paper protocol shows trainable calls as trace-opt does: `eval(...)` with the code as `__code`.
    assert "= eval(self=" in prompt and "__code=__code_create_prompt0" in prompt
    optimizer_request = next(b for b in server.bodies if b["model"] == "loopback-model")
    assert "(code) __code_extract_answer0:" in prompt and "temperature" not in optimizer_request  # server default
    assert record.config["task"]["student"]["model"] == "student-model"

    # The server is gone: the whole run, student included, replays from the cache.
    overrides = table1_overrides(server.url, tmp_path / "c.sqlite")
    again = run(compose_run("optimize", [o.replace("llm=openai", "llm=replay") for o in overrides], tmp_path / "re"))
    assert again.metrics["test/acc"] == 100.0 and again.cost.llm_calls == 0
    assert again.cost.cache_hits == record.cost.llm_calls + record.cost.cache_hits
    assert [p["params"] for p in again.curve] == [p["params"] for p in record.curve]


def test_an_interrupted_test_evaluation_resumes_from_the_cache(tmp_path):
    cache = tmp_path / "c.sqlite"
    with serving(responder=table1_responder) as server:
        # 21 distinct requests in all (2 optimizer, 19 student): it dies evaluating the test split.
        server.script = ["ok"] * 17 + ["500"] * 200
        with pytest.raises(LLMError, match="status=500"):
            run(compose_run("optimize", table1_overrides(server.url, cache), tmp_path / "a"))
        assert server.seen > 17
        server.script, before = [], server.seen  # the same endpoint, well again (its replies are keyed on it)
        record = run(compose_run("optimize", table1_overrides(server.url, cache), tmp_path / "b"))
        assert server.seen - before == 21 - 17, "only the requests that never got a reply are asked again"
    assert record.metrics["test/acc"] == 100.0 and record.cost.llm_calls == 21 - 17


def test_smoke_runs_read_the_fixtures_and_a_task_refuses_a_missing_student(run_dir):
    from hydra.utils import instantiate

    with graph_context():
        task = instantiate(compose_run("optimize", ["task=bbh_cot", "mode=smoke"], run_dir).task)
        assert task.source == "tests/data/bbh" and task.cot and task.limit == 3
        assert "Reasoning:" in task.init_params()["prompt_template0"]
    with pytest.raises(Exception, match="student model"):
        instantiate(compose_run("optimize", ["task=bbh", "llm=none"], run_dir).task)


# -- Table 1, the paper's protocol ---------------------------------------------------------------

def paper_task(responder):
    from tasks.trace_paper.bbh_agent import BBHTask
    return BBHTask("date_understanding", ScriptedLLM(responder=responder), source=str(FIXTURES), limit=3)


def test_paper_start_program_raises_without_answer_and_its_error_is_the_first_feedback():
    with graph_context():
        task = paper_task(lambda m: f"It is ({weekday_answer(m[-1]['content'])}).")  # no "Answer:"
        assert task.protocol == "paper" and task.objective is None
        code = next(v for k, v in task.init_params().items() if "extract_answer" in k)
        assert 'split("Answer:")[1]' in code
        first = task.evaluate(task.init_params())
        assert "IndexError" in first.text and first.score == -math.inf
        assert first.info["validated"] == 0.0 and first.info["skip_update"] == 0.0
        assert task.student.requests[0][0]["content"] == "You are a helpful assistant."
        later = [task.evaluate(task.init_params()) for _ in range(2)]
        assert [f.info["validated"] for f in later] == [0.0, 1.0], "nothing validated: the last step does"


def test_paper_protocol_skips_the_update_on_a_right_answer_and_validates_as_the_paper():
    train: list[str] = []  # the first two training questions get a wrong answer, the third one none

    def student(messages):
        asked = messages[-1]["content"]
        hits = [i for i, q in enumerate(train) if q in asked]
        return "It is unclear." if hits == [2] else "Answer: (E)"
    with graph_context():
        task = paper_task(student)
        train.extend(e.question for e in task.splits.train[:3])
        steps = []
        for _ in range(3):
            fb = task.evaluate(task.init_params())
            steps.append((fb.info["train_correct"], fb.info["validated"], fb.info["skip_update"]))
        # wrong (validated: first wrong), wrong (validated: second) -> the third (an error) is not
        assert [v for _, v, _ in steps] == [1.0, 1.0, 0.0] and all(s == 0.0 for _, _, s in steps)
    with graph_context():
        right = paper_task(lambda m: f"Answer: ({weekday_answer(m[-1]['content'])})")
        fb = right.evaluate(right.init_params())
        assert fb.info == {"train_correct": 1.0, "val_acc": 1.0, "validated": 1.0, "skip_update": 1.0}
        assert fb.score == 1.0


def test_paper_scoring_is_exact_and_the_adapter_skips_an_update_when_told():
    from harness.api import Feedback
    from harness.trace_adapter import TraceAdapter

    assert bbh.score_bbh_exact("(B)", "so (A) or (B)") and not bbh.score_bbh_exact("Yes", " Yes")
    assert bbh.score_bbh("Yes", " Yes"), "ours (protocol: harness) ignores surrounding whitespace"
    assert not bbh.score_bbh_exact("8", 8)
    with graph_context():
        task = paper_task(lambda m: "Answer: (A)")
        llm = ScriptedLLM(replies=["{}"])
        adapter = TraceAdapter(task, llm, OptoPrime_partial())
        adapter.tell({}, Feedback(score=1.0, text="right", output=None, info={"skip_update": 1.0}))
        assert llm.requests == [] and adapter.step_metrics()["trace/skipped"] == 1


def OptoPrime_partial():
    import functools
    from trace_core.optimizers import OptoPrime
    return functools.partial(OptoPrime, memory_size=0)


def test_table1_runs_the_papers_protocol_by_default_and_ours_as_a_named_variant(run_dir):
    paper = compose_run("optimize", ["experiment=table1_bbh"], run_dir)
    assert paper.protocol == "paper" and paper.task.protocol == "paper"
    assert "trace_nomem" in paper.hydra.sweeper.params.optimizer and "task_weight" not in str(paper.table)
    assert paper.table.methods.copro_none.startswith("DSPy 3.4 (paper: 2.4)")
    ours = compose_run("optimize", ["experiment=table1_bbh_harness"], run_dir)
    assert ours.task.protocol == "harness" and "optoprime" in ours.hydra.sweeper.params.optimizer
    assert ours.results_dir.startswith("results/table1_bbh_harness/")


# -- Table 2 tasks ----------------------------------------------------------------------------

def counting_student(messages: list[dict]) -> str:
    """Right when the system prompt says 'count carefully', else off by one."""
    text = messages[-1]["content"]
    numbers = {"a": 1, "one": 1, "two": 2, "three": 3}
    kind = re.search(r"How many ([\w ]+) do I have", text).group(1)
    total = sum(numbers[n] for n, item in re.findall(r"\b(a|two|three) (\w+)", text)
                if item.rstrip("s") in " ".join(bbh_items(kind)))
    return f"Answer: {total + (0 if 'count carefully' in messages[0]['content'] else 1)}"


def bbh_items(kind: str) -> list[str]:
    return {"fruits": ["apple", "banana", "plum", "peach", "grape", "orange"],
            "vegetables": ["carrot", "onion", "potato", "cabbage", "yam"],
            "musical instruments": ["drum", "flute", "violin", "piano", "trumpet"]}[kind]


def test_prompt_task_batches_three_questions_and_tests_the_last_prompt():
    with graph_context():
        task = textgrad_tasks.textgrad_task("object_counting", ScriptedLLM(responder=counting_student), mode="smoke",
                                 seed=3)
        assert task.limit == 12 and task.splits.sizes() == (50, 100, 10)
        feedback = task.evaluate(task.init_params())
        assert feedback.score == 0.0 and feedback.output.op.name == "join"
        assert [p.op.name for p in feedback.output.parents] == ["grade"] * 3
        assert task.test(task.init_params())["acc"] == 0.0
        task.system_prompt._data = "Solve it; count carefully. End with `Answer: N`."  # as a step would
        assert task.test(task.init_params())["acc_object_counting"] == 100.0


def test_solution_task_improves_wrong_answers_at_most_three_times_then_finishes():
    def student(messages):
        if messages[0]["content"].startswith("You are an expert reviewer"):
            return "The reasoning misreads the question."
        return "Answer: A"  # right for one question of four

    with graph_context():
        task = textgrad_tasks.textgrad_task("mmlu_machine_learning", ScriptedLLM(responder=student), mode="smoke")
        assert task.limit == 12
        name, seen = task.response.py_name, []
        params = task.init_params()
        for _ in range(task.limit):
            feedback = task.evaluate(params)
            if task.finished:
                break
            seen.append((feedback.info["question"], feedback.info["iteration"]))
            assert feedback.output.op.name == "review"
            # an optimizer's rewrite: question 0 is fixed on its second update; "D" is right for 3 only
            fixed = (feedback.info["question"], feedback.info["iteration"]) == (0, 1)
            params = {name: "Answer: B" if fixed else "Answer: D"}
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (3, 0)]  # answers: B C A D; zero-shot A
    metrics = task.test(params)
    assert metrics["zero_shot_acc"] == 25.0 and metrics["acc"] == 75.0 and metrics["questions_optimized"] == 3
    # textgrad's final entry: majority over each question's iterates (A,D,B -> A; A,D,D,D -> D; A; A,D -> A)
    assert metrics["majority_acc"] == 25.0 == metrics["majority_acc_mmlu_machine_learning"]


def test_table2_reads_the_first_answer_letter_as_textgrad_does():
    assert bbh.score_letter_first("C", "Answer: C\nOn second thought, Answer: D")
    assert not bbh.score_letter_first("D", "Answer: C\nOn second thought, Answer: D")
    assert not bbh.score_letter_first("C", "answer: c"), "the letter is compared as written"
    from tasks.trace_paper.textgrad_tasks import majority_answer
    assert majority_answer(["Answer: B", "Answer: C", "Answer: C", "no letter"]) == "Answer: C"


def test_word_sorting_starts_from_the_numeric_description_and_an_llm_judge_grades_it(tmp_path):
    from tasks.trace_paper.textgrad_tasks import NUMBER_INSTRUCTION

    judge = ScriptedLLM(responder=lambda m: "<ACCURACY> 1 </ACCURACY>" if "apple" in m[-1]["content"]
                        else "<ACCURACY> 0 </ACCURACY>")
    with graph_context():
        task = textgrad_tasks.textgrad_task("word_sorting", ScriptedLLM(replies=["Answer: apple banana"]), mode="smoke",
                                 judge=judge)
        assert task.system_prompt.data == NUMBER_INSTRUCTION, "textgrad's BBH start prompt, for word sorting too"
        feedback = task.evaluate(task.init_params())
        asked = judge.requests[0][-1]["content"]
        assert "Question:" in asked and "Correct answer:" in asked and "<ACCURACY>" in asked
        assert feedback.score == 1.0 and [p.op.name for p in feedback.output.parents] == ["grade"] * 3
    with pytest.raises(ConfigError, match="LLM judge"):
        textgrad_tasks.textgrad_task("word_sorting", ScriptedLLM(replies=["x"]), mode="smoke")


def test_table2_reads_bbh_where_the_rest_of_the_harness_does(run_dir, monkeypatch):
    monkeypatch.setenv("BBH_DATA", str(FIXTURES))
    cfg = compose_run("optimize", ["experiment=table2_textgrad"], run_dir)
    assert cfg.task.bbh_source == str(FIXTURES) == compose_run("optimize", ["task=bbh"], run_dir).task.source
    assert cfg.protocol == "paper" and cfg.optimizer.optimizer.get("all_edges", True)
    tg = compose_run("optimize", ["experiment=table2_textgrad", "optimizer=textgrad"], run_dir)
    assert tg.optimizer.optimizer.all_edges is True, "gradients go to every parent, as TGD does"
    with graph_context():
        task = textgrad_tasks.textgrad_task("object_counting", ScriptedLLM(replies=["x"]),
                                 bbh_source=str(FIXTURES))
        assert task.splits.sizes() == (50, 100, 10)


def test_a_hub_id_that_cannot_be_loaded_is_a_one_line_config_error(monkeypatch):
    datasets = pytest.importorskip("datasets")
    tried = []

    def unreachable(hub_id, name, split, revision=None):
        tried.append(revision)
        raise ConnectionError("no network here\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(ConfigError, match="cannot load 'maveriq/bigbenchhard'") as error:
        bbh.load_bbh("navigate", "maveriq/bigbenchhard")
    assert "\n" not in str(error.value) and "local path" in str(error.value)
    assert tried == [None, "refs/convert/parquet"], "the hub's parquet conversion is the fallback"
