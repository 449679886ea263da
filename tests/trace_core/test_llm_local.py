"""`llm=local` without the real model: the chunks are checked, and the server process is started on
the first request, reused when one already serves the model, and stopped with its owner. A stand-in
(tests/fake_openai.py run as a process) plays llama.cpp's server; the real-model smoke is in
tests/test_local_llm.py (`-m llm`)."""
from __future__ import annotations

import hashlib
import signal
import socket
import sys

import pytest

from support import ROOT
from trace_core.llm import CachedLLM, LLMConfigError, LLMError
from trace_core.llm.local_model import ModelFile, assemble
from trace_core.llm.local_server import LocalChat, LocalServer, local_llm

MESSAGES = [{"role": "user", "content": "Say hi."}]
ALIAS = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stand_in(port: int, alias: str = ALIAS, *behaviour: str) -> list[str]:
    return [sys.executable, str(ROOT / "tests" / "fake_openai.py"), str(port), alias, *behaviour]


def chunks(tmp_path, *contents: bytes):
    paths = []
    for i, content in enumerate(contents):
        paths.append(tmp_path / f"part{i}.bin")
        paths[-1].write_bytes(content)
    return paths


def test_the_chunks_are_assembled_once_and_checked(tmp_path):
    whole = b"GGUF" + bytes(range(256)) * 3
    model = ModelFile("tiny.gguf", ("a", "b"), "0.2.0", len(whole), hashlib.sha256(whole).hexdigest())
    sources = chunks(tmp_path, whole[:100], whole[100:])
    path = assemble(model, tmp_path / "models", sources)
    assert path.read_bytes() == whole and path.with_suffix(".sha256").read_text().strip() == model.sha256
    sources[0].unlink()  # the second time, nothing is read
    assert assemble(model, tmp_path / "models", sources) == path


def test_chunks_that_do_not_add_up_are_refused_and_leave_nothing(tmp_path):
    whole = b"GGUF" + bytes(200)
    model = ModelFile("tiny.gguf", ("a",), "0.2.0", len(whole), hashlib.sha256(whole).hexdigest())
    with pytest.raises(LLMConfigError, match="refusing them"):
        assemble(model, tmp_path / "models", chunks(tmp_path, whole[:-1] + b"X"))
    assert list((tmp_path / "models").iterdir()) == []


def test_the_config_builds_without_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_MODEL_DIR", str(tmp_path))
    port = free_port()
    llm = local_llm(port=port, cache_path=tmp_path / "c.sqlite", command=stand_in(port), temperature=0,
                    max_tokens=1024)
    assert isinstance(llm, CachedLLM) and isinstance(llm.inner, LocalChat)
    assert (llm.inner.timeout_s, llm.inner.max_concurrency) == (600, 1), "self-hosted defaults"
    assert llm.inner.endpoint == f"http://127.0.0.1:{port}/v1" and llm.params == {"temperature": 0, "max_tokens": 1024}
    assert llm.inner.server.served() is None and not (tmp_path / "c.sqlite").exists()


def test_the_server_starts_on_the_first_request_is_reused_and_stops_with_its_owner(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_MODEL_DIR", str(tmp_path))
    port = free_port()
    first = local_llm(port=port, command=stand_in(port), start_timeout_s=60)
    try:
        assert first.complete(MESSAGES).text == "reply 1" and first.server._process is not None
        second = local_llm(port=port, command=["false"])  # would fail if it tried to start one
        assert second.complete(MESSAGES).text == "reply 2" and second.server._process is None
        other = LocalServer("another-model", port)
        with pytest.raises(LLMConfigError, match=f"port {port} already serves {ALIAS}"):
            other.ensure()
    finally:
        first.server.stop()
    assert first.server.served() is None, "the server this run started is gone"


def test_a_server_that_dies_while_starting_is_reported_with_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACE_MODEL_DIR", str(tmp_path))
    port = free_port()
    server = LocalServer(ALIAS, port, command=[sys.executable, "-c", "import sys; sys.exit('no model file here')"])
    with pytest.raises(LLMConfigError, match="exited while starting.*no model file here"):
        server.ensure()


def test_a_server_that_dies_on_a_request_is_named_with_its_signal_and_the_fix(tmp_path, monkeypatch):
    # Seen with llama-cpp-python built natively on a VM whose CPU advertises AMX: the server starts,
    # lists its model, and dies of SIGILL on the first completion; the client saw only "connection
    # refused" after six attempts.
    # CI's runner starts the tests with SIGILL blocked, and children inherit the mask: the stand-in
    # must die all the same (a real illegal instruction ignores the mask), so the test blocks it too.
    monkeypatch.setenv("TRACE_MODEL_DIR", str(tmp_path))
    port = free_port()
    llm = local_llm(port=port, command=stand_in(port, ALIAS, "sigill"), start_timeout_s=60, max_retries=1)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGILL})
    try:
        with pytest.raises(LLMError, match="local server died.*SIGILL.*GGML_NATIVE=OFF"):
            llm.complete(MESSAGES)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        llm.server.stop()


@pytest.mark.parametrize("optimizer,key", [("optoprime", "optimizer.optimizer.max_tokens"),
                                           ("opro", "optimizer.optimizer.max_tokens"),
                                           ("reference_optoprime", "optimizer.max_tokens")])
def test_an_endpoint_budget_is_the_optimizers_budget(optimizer, key, tmp_path):
    # llm=local's max_tokens 1024 was overridden by every optimizer's per-call 4096: a 1.5B model
    # in JSON mode then ran past 1,000 tokens at 2.5 tokens/s (half an hour for one step).
    from omegaconf import OmegaConf

    from support import compose_run

    local = compose_run("optimize", ["task=numeric", f"optimizer={optimizer}", "llm=local"], tmp_path)
    assert OmegaConf.select(local, key) == 1024
    hosted = compose_run("optimize", ["task=numeric", f"optimizer={optimizer}", "llm=openai"], tmp_path)
    assert OmegaConf.select(hosted, key) == 4096, "an endpoint without a budget keeps the optimizer's"
