"""OptoPrime: one LLM call per step, on a pseudo-code report of the traced subgraph.

    from trace_core.optimizers import OptoPrime
    optimizer = OptoPrime([x], llm=llm, memory_size=5)   # memory_size=0: the paper's NoMem
    optimizer = OptoPrime([x], llm=llm, mask=MASKED)      # the paper's Trace Masked
    optimizer = OptoPrime([x], llm=llm, prompt_file="my_prompt.txt")   # other wording
    optimizer = OptoPrime([x], llm=llm, protocol="harness")  # our report style (report.Style)

`protocol="paper"` (the default) writes the report as trace-opt 0.1.3.8 does (report.PAPER) and
sends no temperature unless `temperature` names one, so the server's default applies, as the
paper's code did; "harness" is our variant (report.HARNESS: repr strings, long values cut, calls
under their function's name with the current docstring) and keeps the client's temperature. Either way only this optimizer's
parameters are #Variables.

The default system message carries the paper's sections and the information it gives about them,
in our own wording. `prompt_file` replaces it: the file's text up to a line `=== FORMAT ===` is
the description of the report, the text after it the reply format (without that line, the whole
file is the system message). The reply is read as before (a JSON object with "suggestion"), so
a replacement should still ask for that.

The reply is read robustly (trace_core.optimizers.parsing); each suggested value is converted to
its parameter's type and code is checked before it is accepted. Parameters nothing usable came
back for stay as they were, and the step's log says why.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from trace_core.code import check_replacement
from trace_core.graph import ParameterNode
from trace_core.optimizers.base import Optimizer, StepLog
from trace_core.optimizers.parsing import convert, extract_object, parse_suggestion
from trace_core.optimizers.report import STYLES, Report, build_report, current_values, is_code

MASKED = ("documentation", "code", "inputs", "others")  # the paper's Trace Masked

DEFAULT_OBJECTIVE = "Change the values in #Variables so that the outputs improve according to #Feedback."

SYSTEM_PROMPT = """You improve a program by changing some of its values and code. You are shown a report of one run of the program, written as pseudo-code in sections:

#Instruction: the task to accomplish.
#Code: the operations that ran, one per line, as `result = operation(argument=value_name, ...)`.
#Documentation: what each operation in #Code does. It may be incomplete; #Others can help fill the gaps.
#Variables: the values you are allowed to change.
#Constraints: conditions the variables must meet.
#Inputs: values the run used that you cannot change.
#Others: intermediate results of the run.
#Outputs: what the run produced.
#Feedback: what was said about the outputs.

Values are written as `(type) name=value`. A variable of type (code) holds Python source code."""

FORMAT_PROMPT = """Reply with a single JSON object and nothing else:
{"reasoning": "<your analysis>", "answer": "<only if the instruction asks for an answer; otherwise empty>", "suggestion": {"<variable name>": <new value>}}

In "reasoning": (1) say what the instruction asks for; (2) explain what the feedback implies for each variable, given how #Code uses it; (3) state the change you make and what you expect it to do.
In "suggestion": use only names from #Variables, with values of the same type. The new value of a (code) variable must be complete Python source that defines the same function with the same parameters.
If nothing should change, reply with the single word TERMINATE."""


FORMAT_SEPARATOR = "=== FORMAT ==="


def read_prompt_file(path: str | Path) -> tuple[str, str]:
    """(report description, reply format) from a prompt file (see the module docstring)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"optimizer.prompt_file: {path} is not a file")
    text = file.read_text(encoding="utf-8")
    lines = text.splitlines()
    if FORMAT_SEPARATOR in (line.strip() for line in lines):
        at = [line.strip() for line in lines].index(FORMAT_SEPARATOR)
        system, reply_format = "\n".join(lines[:at]).strip(), "\n".join(lines[at + 1:]).strip()
    else:
        system, reply_format = text.strip(), ""
    if not system and not reply_format:
        raise ValueError(f"optimizer.prompt_file: {path} is empty")
    return system, reply_format


class OptoPrime(Optimizer):
    def __init__(self, parameters: Iterable[ParameterNode], llm: Any, objective: str | None = None,
                 memory_size: int = 0, mask: Iterable[str] = (), max_tokens: int = 4096,
                 json_mode: bool = True, prompt_file: str | Path | None = None,
                 temperature: float | None = None, protocol: str = "paper") -> None:
        super().__init__(parameters, memory_size)
        if protocol not in STYLES:
            raise ValueError(f"optimizer.protocol must be one of {', '.join(STYLES)}; got {protocol!r}")
        self.protocol, self.style = protocol, STYLES[protocol]
        self.temperature = temperature  # None: the client's own (e.g. llm.temperature); see _complete
        self.llm, self.objective = llm, objective or DEFAULT_OBJECTIVE
        self.mask, self.max_tokens, self.json_mode = tuple(mask), max_tokens, json_mode
        self.prompt_text = read_prompt_file(prompt_file) if prompt_file else (SYSTEM_PROMPT, FORMAT_PROMPT)

    # -- the prompt ---------------------------------------------------------------------------
    def system_prompt(self) -> str:
        return "\n\n".join(part for part in self.prompt_text if part)

    def user_prompt(self, report: Report, current: tuple[dict[str, Any], str]) -> str:
        """The report, then the memory of earlier steps (the current one joins it afterwards)."""
        text = f"Here is the report of the latest run.\n\n{'=' * 40}\n{report.render(self.mask)}\n{'=' * 40}\n"
        if self.memory:
            past = "\n".join(json.dumps({"variables": v, "feedback": f}, default=str) for v, f in self.memory)
            text += f"\nEarlier values of the variables and the feedback each received:\n{past}\n"
        return text + "\nYour reply:"

    def messages(self, report: Report, current: tuple[dict[str, Any], str]) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": self.user_prompt(report, current)}]

    # -- one step -----------------------------------------------------------------------------
    def propose(self) -> dict[ParameterNode, Any]:
        return self._ask(self._prompt())

    def _prompt(self) -> list[dict[str, str]]:
        """This step's messages (the current values and feedback join the memory here)."""
        report = build_report(self.subgraphs, self.objective, self.parameters, self.style)
        current = (current_values(self.subgraphs), report.feedback)
        messages = self.messages(report, current)
        self.remember(*current)
        return messages

    def _ask(self, messages: list[dict[str, str]], **params: Any) -> dict[ParameterNode, Any]:
        """One request on `messages`, read into an update; its StepLog joins `logs`."""
        log = StepLog(messages=messages)
        self.logs.append(log)
        completion = self._complete(log.messages, **params)
        log.reply = completion.text
        log.prompt_tokens = completion.usage.prompt_tokens
        log.completion_tokens = completion.usage.completion_tokens
        reply = extract_object(completion.text) or {}
        log.reasoning = str(reply.get("reasoning", ""))
        suggestion, log.note = parse_suggestion(completion.text)
        if getattr(completion, "truncated", False):
            log.note = "; ".join(filter(None, [log.note, "the reply was cut off at max_tokens"]))
        if not suggestion and log.note and "TERMINATE" not in log.note and hasattr(self.llm, "mark"):
            self.llm.mark(completion, log.note)  # the cache notes it: `cache_cli evict --marked` drops it
        return self._accept(suggestion, log)

    def _complete(self, messages: list[dict[str, str]], **params: Any) -> Any:
        """One request (`params`: e.g. a candidate's temperature), in JSON mode where the endpoint allows."""
        from trace_core.llm import LLMError, ReplayMissError

        if self.temperature is not None:
            params = {"temperature": self.temperature, **params}
        elif self.protocol == "paper":  # the paper's code sends none: the server's default
            params = {"temperature": None, **params}
        if self.json_mode:
            try:
                return self.llm.complete(messages, max_tokens=self.max_tokens,
                                         response_format={"type": "json_object"}, **params)
            except LLMError as exc:
                # An endpoint that rejects JSON mode (400/422, or a 500 saying so) is asked once more
                # without it; when replaying such a run, that second request is the one the cache holds.
                if not isinstance(exc, ReplayMissError) and not exc.rejected:
                    raise
        return self.llm.complete(messages, max_tokens=self.max_tokens, **params)

    def _accept(self, suggestion: dict[str, Any], log: StepLog) -> dict[ParameterNode, Any]:
        """Keep the suggested values that fit their parameter and change it; record why the
        others were not used (a value equal to the current one is `unchanged`, not applied)."""
        update: dict[ParameterNode, Any] = {}
        for name, value in suggestion.items():
            parameter, why = self._named(name)
            if parameter is None:
                log.refused[name] = why
                continue
            try:
                new = check_replacement(value, parameter.data) if is_code(parameter) else convert(value, parameter.data)
            except ValueError as exc:
                log.refused[name] = str(exc)
                continue
            if type(new) is type(parameter.data) and new == parameter.data:
                log.unchanged.append(parameter.py_name)
                continue
            update[parameter] = new
            log.applied[parameter.py_name] = new
        if not update and not log.note:
            log.note = ("the suggestion only repeated the current values" if log.unchanged and not log.refused
                        else "no suggested value could be used" if suggestion else "the suggestion was empty")
        return update

    def _named(self, name: str) -> tuple[ParameterNode | None, str]:
        """The parameter a suggested name means: its py_name, or (models often drop the number)
        its base name when exactly one parameter has it."""
        for parameter in self.parameters:
            if parameter.py_name == name:
                return parameter, ""
        same_base = [p for p in self.parameters if p.name.rsplit(":", 1)[0] == name]
        if len(same_base) == 1:
            return same_base[0], ""
        if same_base:
            return None, (f"ambiguous: {', '.join(p.py_name for p in same_base)} all have the base "
                          f"name {name}; use the full name")
        return None, "not one of the variables"
