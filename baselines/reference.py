"""The reference implementations as methods: Microsoft's OptoPrime (`trace-opt`, package `opto`)
and textgrad's TGD, run on the same task, LLM client, cache and records as ours.

    pip install -e '.[reference]'
    python -m harness.optimize task=numeric optimizer=reference_optoprime llm=openai llm.model=<model>
    python -m harness.optimize task=numeric optimizer=reference_tgd llm=openai llm.model=<model>
    python -m harness.optimize -m experiment=fig5a_numeric optimizer=trace_nomem,reference_optoprime

Both libraries trace their own graphs, so a task takes part when it can rebuild its workflow on
their values: `task.workflow(x)` runs the computation on anything with arithmetic (the numeric
programs of Fig. 5a do) and `task.feedback_text(y)` says what the task says about an output. The
harness loop still scores every step with the task's own `evaluate`; `tell` rebuilds the output
in the reference library's graph and hands it, with the same feedback, to the reference optimizer.
Their LLM requests go through our client (`llm=...`): the response cache, `llm=replay` and the
usage counts in the record work as for our methods.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.api import ConfigError, Feedback, Params

_COST_MAP_ENV = "LITELLM_LOCAL_MODEL_COST_MAP"  # litellm (pulled in by trace-opt) must not fetch a price list


def _check(task: Any, llm: Any, method: str) -> None:
    if not (callable(getattr(task, "workflow", None)) and callable(getattr(task, "feedback_text", None))):
        raise ConfigError(f"optimizer={method} needs a task that can rebuild its workflow on the reference "
                          f"library's values (workflow(x), feedback_text(y)), e.g. task=numeric; "
                          f"{type(task).__name__} cannot")
    if not callable(getattr(llm, "complete", None)):
        raise ConfigError(f"optimizer={method} asks a language model: add llm=openai (or llm=scripted)")


def prepare_environment() -> None:
    """Set before importing either library: litellm (pulled in by trace-opt) must not fetch a price
    list, and textgrad opens a log file under ./logs/ when imported: it goes into the run's folder."""
    os.environ.setdefault(_COST_MAP_ENV, "True")
    os.environ.setdefault("TEXTGRAD_LOG_DIR", str(_run_folder() / "textgrad_logs"))


def _import(module: str) -> Any:
    prepare_environment()
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"the reference methods need {module}: pip install -e '.[reference]'") from None


def _run_folder() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(tempfile.gettempdir())


def _single_parameter(task: Any) -> tuple[str, float]:
    (name, start), = task.init_params().items()
    return name, float(start)


def _as_float(value: Any, fallback: float) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        return fallback  # an update that is not a number leaves x where it was


class _ChatReply:
    """The shape opto reads a reply in: reply.choices[0].message.content."""

    def __init__(self, text: str) -> None:
        message = type("Message", (), {"content": text})()
        self.choices = [type("Choice", (), {"message": message})()]


def opto_backend(llm: Any) -> Any:
    """An opto AbstractModel whose calls go to our client (JSON mode passed on when asked)."""
    AbstractModel = _import("opto.utils.llm").AbstractModel

    def chat(messages: list[dict], response_format: Any = None, max_tokens: int | None = None, **_: Any) -> Any:
        params: dict[str, Any] = {"max_tokens": max_tokens} if max_tokens else {}
        if response_format:
            params["response_format"] = dict(response_format)
        return _ChatReply(llm.complete(list(messages), **params).text)

    return AbstractModel(lambda: chat)


def _deterministic(optoprime: type) -> type:
    """OptoPrime with its summary's sections in name order: opto collects the graph's root nodes
    in a set of id-hashed nodes, so #Inputs came in a different order from run to run (and the
    response cache could never replay a run). Only the order changes."""

    class SortedOptoPrime(optoprime):
        def summarize(self):  # noqa: ANN201 (opto's signature)
            summary = super().summarize()
            for section in ("variables", "inputs", "others", "roots"):
                value = getattr(summary, section, None)
                if isinstance(value, dict):
                    setattr(summary, section, dict(sorted(value.items())))
            return summary

    return SortedOptoPrime


class ReferenceOptoPrime:
    """Microsoft's OptoPrime (trace-opt) on a task's workflow, with our LLM client."""

    finished = False

    def __init__(self, task: Any, llm: Any, memory_size: int = 0, mask: list[str] | None = None,
                 max_tokens: int = 4096) -> None:
        _check(task, llm, "reference_optoprime")
        trace, optimizers = _import("opto.trace"), _import("opto.optimizers")
        self.task, self.llm, self.mask = task, llm, list(mask or []) or None
        self._graph = _import("opto.trace.nodes").GRAPH
        self._graph.clear()  # node names restart at :0, so prompts (and cache keys) repeat across runs
        self._name, start = _single_parameter(task)
        self.x = trace.node(start, trainable=True, name=self._name)
        self.optimizer = _deterministic(optimizers.OptoPrime)(
            [self.x], llm=opto_backend(llm), memory_size=memory_size, max_tokens=max_tokens)

    def ask(self) -> Params:
        return {self._name: float(self.x.data)}

    def tell(self, params: Params, feedback: Feedback) -> None:
        self._graph.clear()
        output = self.task.workflow(self.x)
        text = self.task.feedback_text(float(output.data))
        self.optimizer.zero_feedback()
        self.optimizer.backward(output, text)
        self.optimizer.step(mask=self.mask)
        self.x._data = _as_float(self.x.data, float(params[self._name]))

    @property
    def llm_usage(self) -> Any:
        return self.llm.usage


def textgrad_engine(llm: Any) -> Any:
    """A textgrad engine whose generate/__call__ go to our client."""
    EngineLM = _import("textgrad.engine.base").EngineLM

    class HarnessEngine(EngineLM):
        model_string = str(getattr(llm, "model", None) or "harness")

        def generate(self, prompt: str, system_prompt: str | None = None, **params: Any) -> str:
            system = system_prompt or self.system_prompt
            messages = [{"role": "system", "content": system}, {"role": "user", "content": str(prompt)}]
            return llm.complete(messages, **params).text

        def __call__(self, prompt: str, **kwargs: Any) -> str:
            return self.generate(prompt, **kwargs)

    return HarnessEngine()


class ReferenceTGD:
    """textgrad's TextualGradientDescent on a task's workflow: x is a textgrad Variable, the
    workflow a string-based function whose output is the task's feedback; one backward (the
    gradient of x) and one update per step, through our LLM client."""

    finished = False

    def __init__(self, task: Any, llm: Any) -> None:
        _check(task, llm, "reference_tgd")
        tg = _import("textgrad")
        self.task, self.llm, self._tg = task, llm, tg
        self.engine = textgrad_engine(llm)
        self._name, start = _single_parameter(task)
        self.x = tg.Variable(repr(start), requires_grad=True,
                             role_description=f"the number {self._name} fed to the program (a decimal number only)")
        self.optimizer = tg.TGD(parameters=[self.x], engine=self.engine,
                                constraints=["The variable must be a single decimal number, nothing else."])
        self._program = tg.autograd.StringBasedFunction(self._feedback, function_purpose=getattr(
            task, "objective", None) or "runs the program on x and says whether its output must grow or shrink")

    def _feedback(self, x: Any) -> str:
        value = _as_float(x.value, math.nan)
        return self.task.feedback_text(float(self.task.workflow(value)))

    def ask(self) -> Params:
        return {self._name: _as_float(self.x.value, math.nan)}

    def tell(self, params: Params, feedback: Feedback) -> None:
        self.optimizer.zero_grad()
        loss = self._program(inputs={"x": self.x}, response_role_description="feedback on the program's output")
        loss.backward(engine=self.engine)
        before = self.x.value
        try:
            self.optimizer.step()
        except IndexError:  # TGD found no tagged update in the reply: x stays
            return
        if math.isnan(_as_float(self.x.value, math.nan)):  # an update that is not a number: undone
            self.x.set_value(before)

    @property
    def llm_usage(self) -> Any:
        return self.llm.usage
