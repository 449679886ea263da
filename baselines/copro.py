"""DSPy's rows of Trace's Table 1: a DSPy program (Predict or ChainOfThought over
"question -> answer"), as it is (DSPy, DSPy + CoT) or compiled by DSPy's COPRO (DSPy-PO).

    python -m harness.optimize task=bbh task.subtask=navigate optimizer=copro llm=openai
    python -m harness.optimize task=bbh_cot task.subtask=navigate optimizer=copro_none llm=openai
    python -m harness.optimize -m experiment=table1_bbh optimizer=copro_none,copro

This is the real `dspy` package (pip install -e '.[bbh]'), imported on first use. COPRO compiles on
the first 20 examples of the subtask (train + validation, as the paper's DSPy script does) with
the task's metric; the result is tested on the same test split as Trace. The task's student
model answers the questions; `llm` is COPRO's prompt model, which writes the candidate
instructions. The program is compiled on its first use (the first evaluation), so building
this optimizer costs nothing.

LM backends (`backend=`):
- harness: a dspy.LM whose engine is trace_core's client. Same endpoint, same SQLite cache (a
  rerun or `llm=replay` costs nothing), calls and tokens in the run record, and the scripted test
  double in smoke runs.
- native: DSPy's own client, dspy.LM("openai/<model>", api_base=<base_url>), against the same
  OpenAI-compatible endpoint (DSPy's disk cache off). Needs `llm=openai`. Uncached and not
  replayable; the record's cost then counts DSPy's own history of both models (student and
  prompt model) and says so in `roles/backend`.

The paper ran DSPy 2.4, whose template ended each prompt with the output field's prefix; dspy
3.4's ChatAdapter ignores the prefix. Our adapter names it in the request and strips it from the
reply, so the prefix COPRO proposes takes effect.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from pathlib import Path
from typing import Any

from harness.api import ConfigError, Feedback, Params
from trace_core.llm import Metered

log = logging.getLogger(__name__)
MODES = ("none", "copro")
BACKENDS = ("harness", "native")


def import_dspy() -> Any:
    """dspy, imported once per process; litellm inside it must not fetch a price list."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import dspy
    except ImportError:
        raise ConfigError("the DSPy rows need dspy: pip install -e '.[bbh]'") from None
    return dspy


class HarnessEngine:
    """A DSPy engine (complete(Request) -> Response) that sends the request through a trace_core
    client: one DSPy request, one `llm.complete` call."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def complete(self, request: Any) -> Any:
        from dspy.lm15 import Message, Response, TextPart, Usage

        messages = []
        if request.system is not None:
            system = request.system if isinstance(request.system, str) else "".join(
                getattr(p, "text", "") for p in request.system)
            messages.append({"role": "system", "content": system})
        messages += [{"role": m.role, "content": m.text or ""} for m in request.messages]
        params = {k: getattr(request.config, k) for k in ("temperature", "max_tokens", "top_p", "seed")
                  if getattr(request.config, k) is not None}
        reply = self.llm.complete(messages, **params)
        usage = Usage(input_tokens=reply.usage.prompt_tokens, output_tokens=reply.usage.completion_tokens)
        return Response(id=None, model=reply.model or self.llm.model or "model",
                        message=Message.assistant([TextPart(reply.text)]), finish_reason="stop", usage=usage)

    def stream(self, request: Any) -> Any:
        raise NotImplementedError("the harness engine does not stream")

    def close(self) -> None:
        pass


def _endpoint(llm: Any) -> tuple[str, str | None, str]:
    """(model, base_url, api key) of an OpenAI-compatible client (behind a cache, if any)."""
    inner = llm
    while not hasattr(inner, "base_url") and getattr(inner, "inner", None) is not None:
        inner = inner.inner  # through a role meter and a response cache
    if not hasattr(inner, "base_url"):
        raise ConfigError("optimizer.backend=native needs llm=openai (an endpoint to point DSPy at)")
    return inner.model, inner.base_url, os.environ.get(inner.api_key_env) or "not-needed"


def make_lm(llm: Any, backend: str) -> Any:
    dspy = import_dspy()
    if backend == "harness":
        return dspy.LM(f"harness/{llm.model or 'model'}", engine=HarnessEngine(llm), cache=False,
                       num_retries=0)
    model, base_url, key = _endpoint(llm)
    params = dict(getattr(llm, "params", {}))
    return dspy.LM(f"openai/{model}", api_base=base_url, api_key=key, cache=False,
                   num_retries=getattr(getattr(llm, "inner", llm), "max_retries", 3), **params)


def build_program(cot: bool) -> Any:
    """The paper's DSPy program: one predictor over "question -> answer"."""
    dspy = import_dspy()
    return (dspy.ChainOfThought if cot else dspy.Predict)("question -> answer")


def tolerant_adapter() -> Any:
    """DSPy's ChatAdapter (with its JSON fallback), except that a reply neither format can parse
    gives empty output fields instead of an exception: a wrong answer for the student, an empty
    candidate for COPRO's prompt model, never a crashed run."""
    dspy = import_dspy()
    from dspy.utils.exceptions import AdapterParseError

    class TolerantChatAdapter(dspy.ChatAdapter):
        def __call__(self, lm, lm_kwargs, signature, demos, inputs):  # noqa: ANN001 (DSPy's signature)
            try:
                return super().__call__(lm, lm_kwargs, signature, demos, inputs)
            except AdapterParseError as exc:
                log.debug("unparsable reply, empty fields: %s", str(exc).splitlines()[0])
                empty = {name: "" for name in signature.output_fields}
                return [dict(empty) for _ in range(int(lm_kwargs.get("n") or 1))]

        def user_message_output_requirements(self, signature):  # noqa: ANN001, ANN201
            """DSPy's reminder, plus each output field's prefix (as DSPy 2.4's prompts ended with it)."""
            lines = [super().user_message_output_requirements(signature)]
            lines += [f"Begin the `{name}` field with: {prefix}" for name, prefix in _prefixes(signature).items()]
            return "\n".join(lines)

        def parse(self, signature, completion):  # noqa: ANN001, ANN201
            fields = super().parse(signature, completion)
            for name, prefix in _prefixes(signature).items():  # the answer is what follows the prefix
                value = fields.get(name)
                if isinstance(value, str) and value.strip().startswith(prefix):
                    fields[name] = value.strip()[len(prefix):].strip()
            return fields

    return TolerantChatAdapter()


class DSPyProgram:
    """A harness optimizer that evaluates one DSPy program (compiled by COPRO when
    `optimize="copro"`) on a BBH task, through the task's `attach_program`."""

    finished = False
    modes: tuple[str, ...] = MODES  # what `optimize` may name (a subclass adds its compilers)
    prompt_role = "prompt_model"    # the record's name for the model that writes instructions

    def __init__(self, task: Any, llm: Any, optimize: str = "copro", breadth: int = 10, depth: int = 3,
                 init_temperature: float = 1.4, num_threads: int | None = None, backend: str = "harness",
                 output_dir: str | None = None) -> None:
        if not all(hasattr(task, a) for a in ("attach_program", "splits", "student", "score")):
            raise ConfigError(f"{type(task).__name__} is not a BBH task: the DSPy rows need one (task=bbh)")
        if optimize not in self.modes or backend not in BACKENDS:
            raise ConfigError(f"optimizer.optimize must be one of {self.modes} and optimizer.backend one of "
                              f"{BACKENDS}, got {optimize!r} and {backend!r}")
        if optimize != "none" and not callable(getattr(llm, "complete", None)):
            raise ConfigError(f"{optimize} asks a prompt model: add llm=openai (or llm=scripted for a smoke run)")
        if optimize == "copro" and (breadth < 2 or depth < 1):
            raise ConfigError(f"COPRO needs breadth >= 2 and depth >= 1, got {breadth} and {depth}")
        self.task, self.llm, self.optimize, self.backend = task, llm, optimize, backend
        self.breadth, self.depth, self.init_temperature = breadth, depth, init_temperature
        self.num_threads = num_threads
        # The prompt model's requests, counted apart from the student's (often the same client).
        self.meters = [Metered(llm, self.prompt_role)] if optimize != "none" else []
        self.output_dir = Path(output_dir) if output_dir else None
        self.name = f"dspy-{optimize}{'-cot' if task.cot else ''}"
        self._program: Any = None  # built (and compiled) on first use, with the DSPy objects below
        self._student_lm: Any = None
        self._prompt_lm: Any = None
        self._adapter: Any = None
        self._lock = threading.Lock()
        task.attach_program(self.name, self.answer)

    # -- the ask/tell loop: one evaluation of the (compiled) program ------------------------------
    def ask(self) -> Params:
        return {"program": self.name}

    def tell(self, params: Params, feedback: Feedback) -> None:
        self.finished = True  # COPRO did its search inside the first evaluation

    @property
    def llm_usage(self) -> Any:
        """What the prompt model cost (the student's calls are in the task's test metrics)."""
        from trace_core.llm import Usage

        if self.backend == "harness":
            return self.llm.usage if self.optimize != "none" else Usage()
        # DSPy's own client: count what its history recorded, for both models (the task's client
        # never saw the student's calls)
        history = [e for lm in (self._prompt_lm, self._student_lm) if lm is not None for e in lm.history]
        usage = [e.get("usage") or {} for e in history]
        return Usage(calls=sum(len(e.get("outputs") or [None]) for e in history),
                     prompt_tokens=sum(u.get("prompt_tokens") or 0 for u in usage),
                     completion_tokens=sum(u.get("completion_tokens") or 0 for u in usage))

    # -- the program ------------------------------------------------------------------------------
    def answer(self, question: str) -> str:
        dspy = import_dspy()
        program = self.program()
        with dspy.context(lm=self._student_lm, adapter=self._adapter):
            return str(program(question=question).answer)

    def program(self) -> Any:
        """The program to evaluate, compiled on first use (thread-safe: evaluation is concurrent)."""
        with self._lock:
            if self._program is None:
                self._student_lm = make_lm(self.task.student, self.backend)
                self._adapter = tolerant_adapter()
                program = build_program(self.task.cot)
                self._program = self._compile(program) if self.optimize != "none" else program
                self._record_roles()
                self._save()
            return self._program

    def _compile(self, program: Any) -> Any:
        dspy = import_dspy()
        from dspy.teleprompt import COPRO

        splits = self.task.splits
        trainset = [dspy.Example(question=e.question, answer=e.answer).with_inputs("question")
                    for e in splits.train + splits.val]
        metric = lambda example, prediction, trace=None: self.task.score(example.answer, prediction.answer)  # noqa: E731
        threads = self.num_threads or getattr(self.task, "workers", 1)
        self._prompt_lm = make_lm(self.meters[0], self.backend)
        teleprompter = COPRO(prompt_model=self._prompt_lm, metric=metric, breadth=self.breadth,
                             depth=self.depth, init_temperature=self.init_temperature)
        # COPRO prints the prompt model's last exchange on every round (stdout, briefly redirected
        # while it compiles); keep that in the debug log.
        with dspy.context(lm=self._student_lm, adapter=self._adapter), \
                contextlib.redirect_stdout(io.StringIO()) as printed:
            compiled = teleprompter.compile(program, trainset=trainset,
                                            eval_kwargs={"num_threads": threads, "display_progress": False})
        log.debug("COPRO output:\n%s", printed.getvalue())
        return compiled

    def _record_roles(self) -> None:
        """Which model answered which role, for the record (the task reports `roles/*`)."""
        roles = getattr(self.task, "roles", None)
        if roles is None:
            return
        roles["student"] = str(getattr(self.task.student, "model", None) or "?")
        if self.optimize != "none":
            roles[self.prompt_role] = str(getattr(self.llm, "model", None) or "?")
        roles["backend"] = ("harness (trace_core client: cached, replayable)" if self.backend == "harness" else
                            "native (DSPy's own client: uncached, not replayable; cost = DSPy's history)")
        roles["dspy"] = f"dspy {import_dspy().__version__} (paper: 2.4)"

    def signature(self) -> dict[str, str]:
        """The (compiled) instruction and answer prefix: what COPRO changes."""
        return _signature(self.program())

    def _save(self) -> None:
        """The program's instruction and prefix beside the run's logs, to read what COPRO chose
        (YAML: a .json file there would be taken for a run record)."""
        if self.output_dir is not None:
            import yaml

            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / f"{self.name}.yaml").write_text(yaml.safe_dump(_signature(self._program)))


def _prefixes(signature: Any) -> dict[str, str]:
    """Output field -> its prefix (COPRO's proposal, or DSPy's default such as "Answer:")."""
    found = {}
    for name, field in signature.output_fields.items():
        prefix = str((field.json_schema_extra or {}).get("prefix") or "").strip()
        if prefix:
            found[name] = prefix
    return found


def _signature(program: Any) -> dict[str, str]:
    signature = program.predictors()[0].signature
    prefix = signature.fields["answer"].json_schema_extra.get("prefix", "")
    return {"instruction": signature.instructions, "answer_prefix": str(prefix)}
