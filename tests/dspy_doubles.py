"""A test double that answers DSPy's requests in the format each asks for: the output fields a
signature's system message lists, as `[[ ## field ## ]]` sections (ChatAdapter) or as one JSON
object (JSONAdapter, e.g. GEPA's reflection asks for {"new_instruction": ...})."""
from __future__ import annotations

import json
import re

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def right_letter(text: str) -> str:
    """The right option of a date_understanding fixture question (tests/data/bbh)."""
    day, k = re.search(r"Today is (\w+)\. What day is it (\d+) days", text).groups()
    return re.search(rf"\(([A-D])\) {DAYS[(DAYS.index(day) + int(k)) % 7]}", text).group(1)


def output_fields(system: str) -> list[str]:
    """The output field names a DSPy signature's system message lists, in order."""
    block = system.split("Your output fields are:", 1)[-1].split("All interactions", 1)[0]
    return re.findall(r"^\d+\. `(\w+)`", block, flags=re.MULTILINE)


def dspy_reply(system: str, values: dict[str, str]) -> str:
    """Each output field's value (`values`, else a placeholder) in the format the request asks for."""
    fields = {name: values.get(name, f"some {name}") for name in output_fields(system)}
    if "Outputs will be a JSON object" in system:
        return json.dumps(fields)
    return "".join(f"[[ ## {name} ## ]]\n{value}\n\n" for name, value in fields.items()) + "[[ ## completed ## ]]"
