"""optimizer.prompt_file: OptoPrime's system message from a file, so any wording can be run."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from support import ROOT
from trace_core import graph_context, node
from trace_core.llm import ScriptedLLM
from trace_core.optimizers import OptoPrime
from trace_core.optimizers.optoprime import FORMAT_PROMPT, SYSTEM_PROMPT


def system_message(**options):
    llm = ScriptedLLM(replies=['{"suggestion": {"x0": 2}}'])
    with graph_context():
        x = node(1, trainable=True, name="x")
        optimizer = OptoPrime([x], llm=llm, **options)
        optimizer.backward(x + 1, "larger")
        optimizer.step()
        assert x.data == 2, "the reply is read as before"
    return llm.requests[0][0]["content"]


def test_default_prompt_is_ours(tmp_path):
    assert system_message() == f"{SYSTEM_PROMPT}\n\n{FORMAT_PROMPT}"


def test_prompt_file_replaces_the_description_and_the_format(tmp_path):
    path = tmp_path / "wording.txt"
    path.write_text("You are an optimizer. Sections follow.\n=== FORMAT ===\nAnswer in JSON with a suggestion.\n")
    assert system_message(prompt_file=str(path)) == "You are an optimizer. Sections follow.\n\nAnswer in JSON with a suggestion."
    path.write_text("One text for everything.\n")
    assert system_message(prompt_file=path) == "One text for everything."


def test_a_missing_or_empty_prompt_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="prompt_file"):
        system_message(prompt_file=tmp_path / "nosuch.txt")
    (tmp_path / "empty.txt").write_text("\n=== FORMAT ===\n")
    with pytest.raises(ValueError, match="empty"):
        system_message(prompt_file=tmp_path / "empty.txt")


@pytest.mark.parametrize("name", ["optoprime", "optoprime_mem10", "trace_masked", "trace_nomem"])
def test_optoprime_configs_name_the_prompt_file_key(name):
    config = OmegaConf.load(ROOT / "configs" / "optimizer" / f"{name}.yaml")
    if "defaults" in config:  # variants inherit optoprime.yaml's key
        assert "optoprime" in config.defaults
        config = OmegaConf.load(ROOT / "configs" / "optimizer" / "optoprime.yaml")
    assert config.optimizer.prompt_file is None
