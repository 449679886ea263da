"""The sandbox executor against one attack per category of issue 14.

Each test runs hostile code, as an LLM might propose it, in a worker and checks that the parent
(and the files, sockets and processes around it) saw no effect. Every loop is bounded and every
socket is on 127.0.0.1.
"""
from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest

from trace_core.sandbox import (FunctionSpec, SandboxError, SandboxExecutor, SandboxLimits, SandboxTimeout,
                                WorkerCrashed)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the sandbox needs a POSIX system")


def spec(body: str, params: str = "", module: str | None = None) -> FunctionSpec:
    source = f"def f({params}):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return FunctionSpec(source, "f", "<trainable f>", module)


@pytest.fixture(scope="module")
def executor():
    pool = SandboxExecutor(max_workers=1)
    yield pool
    pool.close()


def run(executor: SandboxExecutor, body: str, *args, timeout_s: float = 20.0, params: str = ""):
    return executor.call(spec(body, params), args, {}, timeout_s)


def test_plain_values_round_trip(executor):
    body = """
        import numpy as np
        return [x + 1, (x, "a"), {"k": {1, 2}}, np.arange(3) * x, b"\\x00", 1j, float("nan")]
    """
    value = run(executor, body, 2, params="x")
    assert value[:3] == [3, (2, "a"), {"k": {1, 2}}]
    assert value[3].tolist() == [0, 2, 4] and value[4] == b"\x00" and value[5] == 1j and value[6] != value[6]


def test_exception_comes_back_as_data_with_its_line(executor):
    with pytest.raises(SandboxError) as info:
        run(executor, "y = 1\nreturn y / 0\n")
    assert info.value.type_name == "ZeroDivisionError" and info.value.line == 3
    assert "(ZeroDivisionError) division by zero" == str(info.value)


def test_writes_and_deletes_outside_the_work_folder_are_refused(executor, tmp_path: Path):
    keep, planted = tmp_path / "keep.txt", tmp_path / "planted.txt"
    keep.write_text("data")
    attacks = {"write": f"open({str(planted)!r}, 'w').write('x')",
               "os.open": f"import os; os.open({str(planted)!r}, os.O_CREAT | os.O_WRONLY)",
               "delete": f"import os; os.remove({str(keep)!r})",
               "rename": f"import os; os.rename({str(keep)!r}, {str(planted)!r})",
               "rmtree": f"import shutil; shutil.rmtree({str(tmp_path)!r})"}
    for name, attack in attacks.items():
        with pytest.raises(SandboxError, match="PermissionError|sandbox"):
            run(executor, attack)
    assert keep.read_text() == "data" and not planted.exists()
    assert run(executor, "open('scratch.txt', 'w').write('ok')\nreturn open('scratch.txt').read()") == "ok"


def test_environment_and_parent_memory_hold_no_secret(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy-secret-14")
    pool = SandboxExecutor(max_workers=1)  # started now: it would inherit the variable
    try:
        assert "sk-dummy-secret-14" not in repr(pool.call(spec("import os\nreturn dict(os.environ)"), (), {}, 20))
        for path in ("/proc/{ppid}/environ", "/proc/{ppid}/mem", "/proc/{ppid}/cmdline"):
            body = f"import os\nreturn open({path!r}.format(ppid=os.getppid()), 'rb').read()"
            with pytest.raises(SandboxError, match="PermissionError"):
                pool.call(spec(body), (), {}, 20)
    finally:
        pool.close()


def test_data_files_of_the_repository_cannot_be_read(executor):
    data = Path(__file__).resolve().parents[1] / "data"
    target = next(p for p in sorted(data.rglob("*")) if p.is_file() and p.suffix != ".py")
    with pytest.raises(SandboxError, match="PermissionError"):
        run(executor, f"return open({str(target)!r}).read()")


def test_no_connection_even_to_a_loopback_server(executor):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        port = server.getsockname()[1]
        body = f"""
            import socket
            s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
            s.sendall(b"OPENAI_API_KEY")
        """
        with pytest.raises(SandboxError):
            run(executor, body)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected


def test_threads_forks_and_subprocesses_are_refused(executor, tmp_path: Path):
    marker = tmp_path / "spawned"
    body = f"""
        import os, subprocess, threading
        outcomes = []
        attempts = [lambda: threading.Thread(target=print).start(), os.fork,
                    lambda: subprocess.Popen(["touch", {str(marker)!r}]),
                    lambda: os.system("touch {marker}"),
                    lambda: __import__("ctypes").CDLL(None).fork(),
                    lambda: os.posix_spawn("/usr/bin/touch", ["touch", {str(marker)!r}], {{}}),
                    lambda: os.kill(os.getppid(), 0)]
        for attempt in attempts:
            try:
                attempt()
                outcomes.append("done")
            except BaseException as exc:
                outcomes.append(type(exc).__name__)
        return outcomes
    """
    outcomes = run(executor, body)
    assert "done" not in outcomes, outcomes
    assert not marker.exists()


def test_patched_builtins_do_not_reach_the_next_call(executor):
    assert run(executor, "import builtins\nbuiltins.abs = lambda x: 42\nreturn abs(-1)") == 42
    assert run(executor, "return abs(-1)") == 1
    assert run(executor, "import re\nre.search = None\nreturn 0") == 0
    assert run(executor, "import re\nreturn re.search('a', 'a') is not None") is True


def test_globals_are_fresh_on_every_call(executor):
    body = "global counter\ntry:\n    counter += 1\nexcept NameError:\n    counter = 1\nreturn counter"
    assert [run(executor, body) for _ in range(3)] == [1, 1, 1]


@pytest.mark.parametrize("body", [
    "import sys\nsys.settrace(None)\nwhile True:\n    pass",
    "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass",
    "import time\ntime.sleep(600)",
    "import re\nreturn re.match(r'(a+)+$', 'a' * 64 + 'b')",
], ids=["settrace", "catch-base-exception", "sleep", "regex"])
def test_time_limit_cannot_be_escaped(executor, body):
    with pytest.raises(SandboxTimeout, match="timed out after 1 s"):
        run(executor, body, timeout_s=1.0)
    assert run(executor, "return 'next call runs'") == "next call runs"


def test_memory_bomb_is_capped():
    pool = SandboxExecutor(SandboxLimits(memory_mb=1024), max_workers=1)
    try:
        with pytest.raises((SandboxError, WorkerCrashed), match="MemoryError|crashed"):
            pool.call(spec("x = bytearray(4 * 2**30)\nreturn len(x)"), (), {}, 60)
        assert pool.call(spec("return len(bytearray(2**20))"), (), {}, 60) == 2**20
    finally:
        pool.close()


@pytest.mark.parametrize("body, expected", [
    ("import os\nos._exit(0)", "exit status 0"),
    ("import faulthandler\nfaulthandler._sigsegv()", "SIGSEGV"),
])
def test_a_dead_worker_becomes_feedback_and_is_replaced(executor, body, expected):
    with pytest.raises(WorkerCrashed, match=f"crashed the process.*{expected}"):
        run(executor, body)
    assert run(executor, "return 'alive'") == "alive"


@pytest.mark.parametrize("body, kind", [("raise SystemExit(3)", "SystemExit"),
                                        ("raise KeyboardInterrupt", "KeyboardInterrupt")])
def test_exit_exceptions_are_feedback(executor, body, kind):
    with pytest.raises(SandboxError) as info:
        run(executor, body)
    assert info.value.type_name == kind
    assert run(executor, "return 'alive'") == "alive"


def test_grader_frames_are_out_of_reach(executor):
    def grade(question: str) -> bool:
        expected = "(B) the grader's answer"  # what an extract_answer that reads frames would want
        body = """
            import gc, inspect
            for frame_info in inspect.stack():
                for value in frame_info.frame.f_locals.values():
                    if isinstance(value, str) and value.startswith("(B)"):
                        return value
            found = [o for o in gc.get_objects() if isinstance(o, str) and o.startswith("(B)")]
            return found[0] if found else "(A)"
        """
        return run(executor, body, question, params="question") == expected
    assert grade("Which option?") is False


class Agent:
    """An argument that is not plain data: the worker sees a proxy with only `ask`."""
    sandbox_methods = ("ask",)

    def __init__(self) -> None:
        self.api_key, self.asked = "sk-dummy-secret-14", []

    def __repr__(self) -> str:
        return "<agent>"

    def ask(self, text: str) -> str:
        self.asked.append(text)
        return text.upper()


def test_objects_travel_as_proxies_with_only_their_listed_methods(executor):
    agent = Agent()
    assert run(executor, "return self.ask('hi') + repr(self)", agent, params="self") == "HI<agent>"
    assert agent.asked == ["hi"]
    with pytest.raises(SandboxError, match="AttributeError"):
        run(executor, "return self.api_key", agent, params="self")
    with pytest.raises(SandboxError, match="AttributeError"):
        run(executor, "return self.student.api_key", agent, params="self")
    assert run(executor, "return self", agent, params="self") is agent  # comes back as itself


def test_replies_decode_only_to_plain_data():
    from trace_core.sandbox import codec
    refused = [b'{"value": {"__sandbox__": "pickle", "v": "gASVAAAA"}}',  # no tag names code to run
               b'{"value": {"__sandbox__": "ndarray", "v": ["|O", [1], "AAAAAAAAAAA="]}}',  # object arrays
               b'{"value": {"__sandbox__": "ref", "v": 12345}}',  # only objects this process handed out
               b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # too deep
               b"[1, 2]"]
    for data in refused:
        with pytest.raises(codec.CodecError):
            codec.decode_message(data)
    assert codec.decode_message(codec.encode_message({"op": "result", "value": {(1, 2): {3}}}))["value"] == {(1, 2): {3}}
