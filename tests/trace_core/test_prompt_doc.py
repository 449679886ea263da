"""docs/optoprime_prompt.md is the prompt the code sends today, word for word."""
from __future__ import annotations

import importlib.util
import sys

from support import ROOT


def test_rendered_prompt_page_matches_the_code():
    spec = importlib.util.spec_from_file_location("render_prompt", ROOT / "scripts" / "render_prompt.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["render_prompt"] = module
    spec.loader.exec_module(module)
    messages = module.example_messages()
    assert [m["role"] for m in messages] == ["system", "user"]
    assert module.page(messages) == (ROOT / "docs" / "optoprime_prompt.md").read_text(), \
        "run `python scripts/render_prompt.py` to refresh the page"
