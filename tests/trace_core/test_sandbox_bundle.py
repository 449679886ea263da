"""Issue 14's attacks through a trainable bundle, as an optimizer would apply them: the rewritten
code runs in a sandbox worker by default, so this process, its files, its environment and its
callers' frames are out of its reach, and each failure comes back as feedback text."""
from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest

from trace_core import ExecutionError, bundle, graph_context, node
from trace_core.sandbox import default_mode, sandbox_mode

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandbox needs a POSIX system")


@bundle(trainable=True, time_limit_s=5.0)
def policy(x):
    """Maps x to an answer."""
    return x


def rewritten(body: str, x=1):
    """Call `policy` with its code replaced by `body` (indented under the def)."""
    with graph_context():
        policy.parameter._data = "def policy(x):\n" + "".join(f"    {line}\n" for line in body.splitlines())
        try:
            return policy(node(x, name="x")).data
        finally:
            policy.parameter._data = policy._source[0]


def feedback(body: str, x=1) -> str:
    with pytest.raises(ExecutionError) as caught:
        rewritten(body, x)
    return caught.value.exception_node.data


def test_trainable_code_runs_in_another_process_by_default():
    assert default_mode() == "process"
    assert rewritten("import os\nreturn os.getpid()") != os.getpid()
    with sandbox_mode("none"):
        assert rewritten("import os\nreturn os.getpid()") == os.getpid()


def test_a_file_outside_the_work_folder_is_neither_written_nor_deleted(tmp_path: Path):
    keep, planted = tmp_path / "keep.txt", tmp_path / "planted.txt"
    keep.write_text("data")
    assert "PermissionError" in feedback(f"open({str(planted)!r}, 'w').write('x')")
    assert "PermissionError" in feedback(f"import os\nos.remove({str(keep)!r})")
    assert keep.exists() and not planted.exists()


def test_the_environment_holds_no_secret(monkeypatch):
    from trace_core.sandbox import shutdown
    shutdown()  # the pool's next worker starts with the variable set here
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy-secret-14")
    assert "sk-dummy-secret-14" not in repr(rewritten("import os\nreturn dict(os.environ)"))


def test_patched_builtins_stay_in_the_worker():
    real_abs = builtins.abs
    try:
        assert rewritten("import builtins\nbuiltins.abs = lambda v: 42\nreturn abs(-1)") == 42
        assert builtins.abs is real_abs and rewritten("return abs(-1)") == 1
    finally:
        builtins.abs = real_abs  # never left patched, whatever ran


def test_a_sleep_past_the_time_limit_is_feedback():
    assert "(TimeoutError) `policy` timed out after 5 s" in feedback("import time\ntime.sleep(60)")


def test_a_process_exit_is_feedback_and_the_next_call_runs():
    assert "crashed the process" in feedback("import os\nos._exit(0)")
    assert rewritten("return x + 1", 1) == 2


def test_an_exception_is_feedback_with_its_line_marked():
    text = feedback("y = x\nreturn y / 0")
    assert text.startswith("(ZeroDivisionError) division by zero")
    assert ">> 3 |     return y / 0" in text


def test_the_callers_frames_are_out_of_reach():
    expected = "(B) the grader's answer"  # a local of this frame, as the grader's would be
    body = ("import inspect\n"
            "found = [v for f in inspect.stack() for v in f.frame.f_locals.values()\n"
            "         if isinstance(v, str) and v.startswith('(B)')]\n"
            "return found[0] if found else '(A)'")
    assert rewritten(body) != expected


@pytest.mark.parametrize("mode", ["process", "none"])
def test_a_trainable_node_the_code_reads_from_outside_is_caught_in_either_mode(mode):
    from trace_core import MissingInputsError

    with graph_context(), sandbox_mode(mode):
        weight = node(3, trainable=True, name="weight")

        @bundle(trainable=True)
        def scaled(x):
            return x * weight.data  # the worker reads a copy: the parent must still see the dependency

        with pytest.raises(MissingInputsError, match="weight0"):
            scaled(node(2))

        @bundle(trainable=True, allow_external_dependencies=True)
        def allowed(x):
            return x * weight.data  # a worker gets the node's value (issue 28)

        assert allowed(node(2)).data == 6
