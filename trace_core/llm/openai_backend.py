"""`OpenAIChat`: a chat client for any OpenAI-compatible endpoint.

Works with OpenAI itself, Azure-style OpenAI-compatible base URLs, vLLM (`vllm serve ...`,
base_url http://localhost:8000/v1), Ollama (http://localhost:11434/v1) and llama.cpp's server.
The `openai` package is imported on first use, so `import trace_core.llm` stays light.

The client's own retries are switched off (`max_retries=0`): this module runs the retry loop, so
every retry is logged and the policy is tested against a real local HTTP server.
"""
from __future__ import annotations

import email.utils
import inspect
import json
import logging
import os
import random
import threading
import time
from typing import Any

from .base import LLM, Completion, LLMError, Usage, check_messages, one_line

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
# Servers we start ourselves (vLLM, Ollama, llama.cpp) usually ignore the key, but the client
# refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
# Status codes worth another try: request timeout, conflict, rate limit, and any server error.
RETRYABLE = frozenset({408, 409, 429})
# A 200 reply whose body is not an OpenAI chat completion is retried this many times at most:
# it is more often a wrong base_url than a hiccup, and waiting longer would not fix that.
GARBAGE_RETRIES = 2
MAX_WAIT_S = 60.0


class _Garbage(Exception):
    """The server answered, but not with a chat completion."""


class OpenAIChat(LLM):
    """Chat completions from an OpenAI-compatible server, with retries and bounded concurrency.

    `default_params` (temperature, max_tokens, response_format, seed, ...) go with every request;
    keyword arguments of `complete` override them. Parameters the `openai` client does not know
    (e.g. vLLM's `top_k`) are sent in the request body as they are.

    The API key is read from the environment variable `api_key_env` on the first request, not at
    construction, so configs build without a key and without touching the network. Without a
    key, a custom `base_url` (a local server) gets a placeholder key; OpenAI itself raises
    `LLMError` naming the variable to set.
    """

    _transient = ("_lock", "_client", "_client_lock", "_slots")

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_concurrency: int = 4,
        **default_params: Any,
    ) -> None:
        super().__init__(default_params)
        if not model:
            raise ValueError("OpenAIChat needs a model name")
        if max_retries < 0 or max_concurrency < 1 or timeout_s <= 0:
            raise ValueError("need max_retries >= 0, max_concurrency >= 1 and timeout_s > 0")
        self.model = model
        self.base_url = base_url or None
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_concurrency = int(max_concurrency)
        self._rng = random.Random()  # jitter only; never touches results
        self._restore()

    def _restore(self) -> None:
        self._client: Any = None
        self._client_lock = threading.Lock()
        # One slot per request in flight: many threads may share this object safely.
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    @property
    def endpoint(self) -> str:
        return self.base_url or OPENAI_URL

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, endpoint={self.endpoint!r})"

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        check_messages(messages)
        start = time.perf_counter()
        response = self._request_with_retries(messages, {**self.params, **params})
        text = self._reply_text(response)
        tokens = getattr(response, "usage", None)
        usage = Usage(
            calls=1,
            prompt_tokens=int(getattr(tokens, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(tokens, "completion_tokens", 0) or 0),
            seconds=time.perf_counter() - start,
        )
        self._add_usage(usage)
        return Completion(text=text, usage=usage, model=getattr(response, "model", None) or self.model)

    # -- the request -------------------------------------------------------------------------

    def _client_and_params(self) -> tuple[Any, frozenset[str]]:
        with self._client_lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    api_key=self._api_key(), base_url=self.base_url, timeout=self.timeout_s, max_retries=0
                )
                create = self._client.chat.completions.create
                self._known = frozenset(inspect.signature(create).parameters)
            return self._client, self._known

    def _api_key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if self.base_url is None:
            raise LLMError(f"no API key for model {self.model} at {self.endpoint}: set {self.api_key_env}")
        return PLACEHOLDER_KEY

    def _request_kwargs(self, known: frozenset[str], messages: list[dict], request: dict) -> dict:
        kwargs = {k: v for k, v in request.items() if k in known}
        extra = {k: v for k, v in request.items() if k not in known}
        if extra:
            kwargs["extra_body"] = {**(kwargs.get("extra_body") or {}), **extra}
        return {**kwargs, "model": self.model, "messages": messages}

    def _request_with_retries(self, messages: list[dict], request: dict) -> Any:
        import openai

        client, known = self._client_and_params()
        kwargs = self._request_kwargs(known, messages, request)
        garbage = 0
        status: int | str = "?"
        for attempt in range(1, self.max_retries + 2):
            hint = None
            try:
                with self._slots:
                    response = client.chat.completions.create(**kwargs)
                self._check_shape(response)
                return response
            except (_Garbage, json.JSONDecodeError) as exc:
                status, error, garbage = 200, f"reply is not a chat completion ({exc})", garbage + 1
                if garbage > GARBAGE_RETRIES:
                    break
            except openai.APIStatusError as exc:
                status, error = exc.status_code, _server_message(exc)
                if status not in RETRYABLE and status < 500:
                    raise self._failure(status, attempt, error) from exc
                hint = retry_after_s(exc.response.headers)
            except openai.APIConnectionError as exc:  # includes APITimeoutError
                status = "timeout" if isinstance(exc, openai.APITimeoutError) else "connection error"
                error = f"{type(exc).__name__}: {exc}"
            if attempt <= self.max_retries:
                wait = self._wait_s(attempt, hint)
                log.warning("%s: %s on attempt %d; retrying in %.2fs", self, status, attempt, wait)
                time.sleep(wait)
        raise self._failure(status, attempt, error)

    def _wait_s(self, attempt: int, hint: float | None) -> float:
        """The server's Retry-After when it sent one, else exponential backoff; capped, jittered."""
        base = hint if hint is not None else self.backoff_s * 2 ** (attempt - 1)
        base = min(max(base, 0.0), MAX_WAIT_S)
        return base * (1 + 0.25 * self._rng.random())

    def _failure(self, status: int | str, attempts: int | None, error: str) -> LLMError:
        advice = f" (check {self.api_key_env})" if status in (401, 403) else ""
        tries = f" after {attempts} attempt(s)" if attempts else ""
        return LLMError(
            f"LLM request failed: endpoint={self.endpoint} model={self.model} status={status}{advice}"
            f"{tries}; last error: {one_line(error, 300)}",
            status=status if isinstance(status, int) else None,
        )

    # -- the reply ---------------------------------------------------------------------------

    @staticmethod
    def _check_shape(response: Any) -> None:
        from openai.types.chat import ChatCompletion

        # The client hands back the raw text when the body is not JSON, and builds models
        # without validation, so a JSON body of the wrong shape shows up as missing fields.
        if not isinstance(response, ChatCompletion):
            raise _Garbage(f"body starts {one_line(response, 80)!r}")
        if not isinstance(getattr(response, "choices", None), list):
            raise _Garbage("no 'choices' list in the JSON body")

    def _reply_text(self, response: Any) -> str:
        if not response.choices:
            raise self._failure(200, None, "the reply has no choices")
        choice = response.choices[0]
        content = getattr(getattr(choice, "message", None), "content", None)
        if content is None:
            reason = getattr(choice, "finish_reason", None)
            refusal = getattr(getattr(choice, "message", None), "refusal", None)
            why = f"the reply has no content (finish_reason={reason}, refusal={refusal})"
            raise self._failure(200, None, why)
        return content


def _server_message(exc: Any) -> str:
    """The server's own error message when its body has one, else the client's summary."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc)


def retry_after_s(headers: Any) -> float | None:
    """Seconds the server asks us to wait (`retry-after-ms`, or `retry-after` in seconds or as a date)."""
    try:
        return float(headers["retry-after-ms"]) / 1000
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)
