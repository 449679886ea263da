"""`OpenAIChat`: a chat client for any OpenAI-compatible endpoint.

Works with OpenAI itself, Azure-style OpenAI-compatible base URLs, vLLM (`vllm serve ...`,
base_url http://localhost:8000/v1), Ollama (http://localhost:11434/v1) and llama.cpp's server.
The `openai` package is imported on first use, so `import trace_core.llm` stays light.

HTTP failures (408/409/429/5xx, timeouts, dropped connections) are retried by the `openai` client
itself, which honours Retry-After. This module adds only what the client cannot do: retry a 200
whose body is not a usable reply (no choices, no content, a cut-off or oversized body), ask once
more with a larger max_tokens when a reply was cut off, fail fast on a request the server rejected
in a 500's body (llama.cpp does that), back concurrency off after timeouts, check the model name
against the endpoint's /v1/models, and keep the key away from endpoints it was not meant for.
"""
from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import random
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from .base import (LLM, Completion, LLMConfigError, LLMError, Usage, check_messages, check_request_params,
                   one_line)
from .endpoint import ConcurrencyLimit, endpoint_defaults, is_openai_url, looks_rejected

log = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
# Servers we start ourselves (vLLM, Ollama, llama.cpp) usually ignore the key, but the client
# refuses to start without one.
PLACEHOLDER_KEY = "not-needed"
# A 200 whose body is not a chat completion at all is retried this many times at most: it is more
# often a wrong base_url than a hiccup, and waiting longer would not fix that.
GARBAGE_RETRIES = 2
MAX_WAIT_S = 60.0
# Request parameters that would carry a secret into the request body, the config and the record.
SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "authorization", "openai_api_key", "token", "bearer"})


class _Unusable(Exception):
    """The server answered 200, but not with a reply we can use."""

    def __init__(self, message: str, garbage: bool = False) -> None:
        super().__init__(message)
        self.garbage = garbage  # not a chat completion at all


class OpenAIChat(LLM):
    """Chat completions from an OpenAI-compatible server, with retries and bounded concurrency.

    `default_params` (temperature, max_tokens, response_format, seed, ...) go with every request;
    keyword arguments of `complete` override them, and one given as None is not sent (OptoPrime's
    paper protocol leaves the temperature to the server). Parameters the `openai` client does not know
    (e.g. vLLM's `top_k`) are sent in the request body as they are.

    The key is read from the environment variable `api_key_env` on the first request, so configs
    build without one and without touching the network. `OPENAI_API_KEY` goes to OpenAI only: any
    other endpoint gets the key of the variable named for it, or a placeholder. `timeout_s` and
    `max_concurrency` default per endpoint (OpenAI: 60 s, 4 at once; a self-hosted server: 600 s,
    one at a time); a timeout halves the concurrency for the rest of the client's life.
    `max_retries` bounds the extra attempts of one request, whatever went wrong.
    """

    _transient = ("_lock", "_client", "_client_lock", "_slots", "_tally")

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float | None = None,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_concurrency: int | None = None,
        max_reply_chars: int = 1_000_000,
        check_model: bool = True,
        **default_params: Any,
    ) -> None:
        secrets = sorted(k for k in default_params if k.lower().replace("-", "_") in SECRET_PARAMS)
        if secrets:
            raise LLMConfigError(
                f"refusing llm.{secrets[0]}: a key on the command line or in a config ends up in logs and "
                f"records; put it in an environment variable and name that variable: llm.api_key_env=<VAR>")
        check_request_params(default_params)
        super().__init__(default_params)
        if not model:
            raise ValueError("OpenAIChat needs a model name")
        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        default_timeout, default_concurrency = endpoint_defaults(self.endpoint)
        self.timeout_s = float(timeout_s if timeout_s is not None else default_timeout)
        self.max_concurrency = int(max_concurrency if max_concurrency is not None else default_concurrency)
        if max_retries < 0 or self.max_concurrency < 1 or self.timeout_s <= 0 or max_reply_chars < 1:
            raise ValueError("need max_retries >= 0, max_concurrency >= 1, timeout_s > 0, max_reply_chars >= 1")
        self.api_key_env = self._key_variable(api_key_env)
        self.max_retries, self.backoff_s = int(max_retries), float(backoff_s)
        self.max_reply_chars, self.check_model = int(max_reply_chars), bool(check_model)
        self._rng = random.Random()  # jitter only; never touches results
        self._restore()

    def _key_variable(self, named: str | None) -> str:
        """The variable whose key this endpoint gets ("" for none): never OpenAI's for another host."""
        openai = is_openai_url(self.endpoint)
        if named is None:
            return OPENAI_KEY_ENV if openai else ""
        if named == OPENAI_KEY_ENV and not openai:
            host = urlsplit(self.endpoint).netloc
            raise LLMConfigError(
                f"{OPENAI_KEY_ENV} is only ever sent to api.openai.com, not to {host}: put this endpoint's key "
                f"in its own variable and name it with llm.api_key_env=<VAR> (or leave it unset for none)")
        return named

    def variant(self, model: str | None = None, **params: Any) -> OpenAIChat:
        """A client for the same endpoint, key, limits and retries, with another model or parameters."""
        twin = copy.copy(self)
        twin.model, twin.params = model or self.model, {**self.params, **params}
        twin._usage, twin._lock = Usage(), threading.Lock()
        twin._restore()  # its own connection and slots; it reports to the same run ledger
        return twin

    def _restore(self) -> None:
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._slots = ConcurrencyLimit(self.max_concurrency)
        self._tally = threading.local()  # HTTP attempts of the request this thread is making

    @property
    def endpoint(self) -> str:
        return self.base_url or OPENAI_URL

    @property
    def concurrency_now(self) -> int:
        """Requests allowed at once now (lower than `max_concurrency` after timeouts)."""
        return self._slots.limit

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model!r}, endpoint={self.endpoint!r})"

    def complete(self, messages: list[dict], **params: Any) -> Completion:
        check_messages(messages)
        start = time.perf_counter()
        response, text, reason, discarded = self._request(messages, {**self.params, **params})
        prompt, completion = _tokens(response)
        usage = Usage(  # a cut-off attempt asked again was spent too: its tokens count
            calls=1,
            prompt_tokens=prompt + discarded[0],
            completion_tokens=completion + discarded[1],
            seconds=time.perf_counter() - start,
        )
        served = getattr(response, "model", None) or self.model
        self._add_usage(usage, model=served)
        return Completion(text=text, usage=usage, model=served, finish_reason=reason or "")

    # -- the connection ----------------------------------------------------------------------

    def _connect(self) -> tuple[Any, frozenset[str]]:
        with self._client_lock:
            if self._client is None:
                import openai

                http = openai.DefaultHttpxClient(transport=self._transport(),
                                                 event_hooks={"response": [self._inspect_response]})
                client = openai.OpenAI(api_key=self._api_key(), base_url=self.base_url, timeout=self.timeout_s,
                                       max_retries=self.max_retries, http_client=http)
                if self.check_model:
                    self._check_model(client)
                self._known = frozenset(inspect.signature(client.chat.completions.create).parameters)
                self._client = client
            return self._client, self._known

    def _transport(self) -> Any:
        import httpx

        client = self

        class CountingTransport(httpx.HTTPTransport):
            """Counts HTTP attempts (the SDK's retries included) and notices timeouts."""

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                client._tally.attempts = getattr(client._tally, "attempts", 0) + 1
                try:
                    return super().handle_request(request)
                except httpx.TimeoutException:
                    client._timed_out()
                    raise

        return CountingTransport()

    def _timed_out(self) -> None:
        # A timed-out request goes on generating server-side: asking as much again would only
        # queue more work on a server that is already behind.
        limit = self._slots.back_off()
        if limit is not None:
            log.warning("%s: a request timed out after %.0fs; at most %d request(s) at once from now on",
                        self, self.timeout_s, limit)

    def _inspect_response(self, response: Any) -> None:
        if response.request.method != "POST" or response.status_code < 400:
            return
        response.read()
        if response.status_code == 500 and looks_rejected(response.text):
            response.headers["x-should-retry"] = "false"  # the SDK's own switch: asking again cannot help
        elif response.status_code in (408, 409, 429) or response.status_code >= 500:
            log.warning("%s: status %d (%s); the client retries", self, response.status_code,
                        one_line(self._redact(response.text), 120))

    def _api_key(self) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            return key
        if is_openai_url(self.endpoint):
            raise LLMError(f"no API key for model {self.model} at {self.endpoint}: set {self.api_key_env}")
        return PLACEHOLDER_KEY

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return text.replace(key, "***") if key and len(key) >= 8 else text

    def _check_model(self, client: Any) -> None:
        """Refuse a model the endpoint does not list (servers such as llama.cpp answer any name)."""
        import openai

        try:
            listed = [m.id for m in client.with_options(max_retries=0).models.list()]
        except (openai.APIError, TypeError, ValueError, AttributeError) as exc:
            log.debug("%s: no model list (%s); not checking the model name", self, exc)
            return
        if listed and self.model not in listed:
            shown = ", ".join(listed[:8]) + (", ..." if len(listed) > 8 else "")
            raise LLMConfigError(f"model {self.model!r} is not served at {self.endpoint}, which lists: {shown} "
                                 f"(set llm.model to one of them)")

    # -- the request -------------------------------------------------------------------------

    def _request_kwargs(self, known: frozenset[str], messages: list[dict], request: dict) -> dict:
        request = {k: v for k, v in request.items() if v is not None}  # None: not sent (the server's default)
        kwargs = {k: v for k, v in request.items() if k in known}
        extra = {k: v for k, v in request.items() if k not in known}
        if extra:
            kwargs["extra_body"] = {**(kwargs.get("extra_body") or {}), **extra}
        return {**kwargs, "model": self.model, "messages": messages}

    def _request(self, messages: list[dict], request: dict) -> tuple[Any, str, str | None, tuple[int, int]]:
        """(response, text, finish_reason, (prompt, completion) tokens of a cut-off attempt that was
        asked again): one budget of `max_retries` extra attempts in all."""
        client, known = self._connect()
        kwargs = self._request_kwargs(known, messages, request)
        used, garbage, enlarged, discarded = 0, 0, False, (0, 0)
        while True:
            try:
                response, text, reason = self._attempt(client, kwargs, used)
            except _Unusable as exc:
                used, garbage = used + self._attempts(), garbage + exc.garbage
                if used > self.max_retries or garbage > GARBAGE_RETRIES:
                    raise self._failure(200, used, str(exc)) from None
                wait = min(self.backoff_s * 2 ** (used - 1), MAX_WAIT_S) * (1 + 0.25 * self._rng.random())
                log.warning("%s: %s on attempt %d; retrying in %.2fs", self, exc, used, wait)
                time.sleep(wait)
                continue
            used += self._attempts()
            if reason == "length" and not enlarged and used <= self.max_retries and kwargs.get("max_tokens"):
                # A cut-off reply (a JSON object without its end) is rarely usable; twice the room once.
                enlarged, old, discarded = True, kwargs["max_tokens"], _tokens(response)
                kwargs["max_tokens"] = 2 * int(old)
                log.warning("%s: reply cut off at max_tokens=%s (finish_reason=length); asking once more "
                            "with max_tokens=%s", self, old, kwargs["max_tokens"])
                continue
            if text is None:
                raise self._failure(200, used, f"the reply has no content (finish_reason={reason})")
            if reason == "length":
                log.warning("%s: reply cut off at max_tokens=%s (finish_reason=length)", self, kwargs.get("max_tokens"))
            return response, text, reason, discarded

    def _attempts(self) -> int:
        return max(getattr(self._tally, "attempts", 1), 1)

    def _attempt(self, client: Any, kwargs: dict, used: int) -> tuple[Any, str | None, str | None]:
        response = self._create(client, kwargs, used)
        text, reason = self._read(response)
        if text is not None and len(text) > self.max_reply_chars:
            raise _Unusable(f"the reply has {len(text)} characters, over max_reply_chars={self.max_reply_chars}")
        return response, text, reason

    def _create(self, client: Any, kwargs: dict, used: int) -> Any:
        import openai

        self._tally.attempts = 0
        try:
            with self._slots:
                return client.with_options(max_retries=self.max_retries - used).chat.completions.create(**kwargs)
        except json.JSONDecodeError as exc:  # a JSON content type, a body that is not JSON
            raise _Unusable(f"reply is not a chat completion ({exc})", garbage=True) from None
        except openai.APIStatusError as exc:
            attempts = used + max(self._tally.attempts, 1)
            status, message = exc.status_code, _server_message(exc)
            rejected = status in (400, 422) or (status == 500 and looks_rejected(message))
            raise self._failure(status, attempts, message, rejected=rejected) from None
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            attempts = used + max(self._tally.attempts, 1)
            status = "timeout" if isinstance(exc, openai.APITimeoutError) else "connection error"
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            raise self._failure(status, attempts, f"{type(exc).__name__}: {exc}{cause}") from None

    def _failure(self, status: int | str, attempts: int | None, error: str, rejected: bool | None = None) -> LLMError:
        advice = f" (check {self.api_key_env or 'llm.api_key_env'})" if status in (401, 403) else ""
        tries = f" after {attempts} attempt(s)" if attempts else ""
        return LLMError(
            f"LLM request failed: endpoint={self.endpoint} model={self.model} status={status}{advice}"
            f"{tries}; last error: {one_line(self._redact(error), 300)}",
            status=status if isinstance(status, int) else None, rejected=rejected,
        )

    # -- the reply ---------------------------------------------------------------------------

    @staticmethod
    def _read(response: Any) -> tuple[str | None, str | None]:
        """(content, finish_reason) of the first choice; `_Unusable` when there is none."""
        from openai.types.chat import ChatCompletion

        # The client hands back the raw text when the body is not JSON, and builds models
        # without validation, so a JSON body of the wrong shape shows up as missing fields.
        if not isinstance(response, ChatCompletion):
            raise _Unusable(f"reply is not a chat completion (body starts {one_line(response, 80)!r})", garbage=True)
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list):
            raise _Unusable("reply is not a chat completion (no 'choices' list in the JSON body)", garbage=True)
        if not choices:
            raise _Unusable("the reply has no choices")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        reason = getattr(choices[0], "finish_reason", None)
        if content is None and reason != "length":
            refusal = getattr(message, "refusal", None)
            raise _Unusable(f"the reply has no content (finish_reason={reason}, refusal={refusal})")
        if content is not None and not isinstance(content, str):
            raise _Unusable(f"the reply's content is a {type(content).__name__}, not text")
        return content, reason


def _server_message(exc: Any) -> str:
    """The server's own error message when its body has one, else the client's summary."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    if body is not None:
        return json.dumps(body, default=str) if not isinstance(body, str) else body
    return str(exc)


def _tokens(response: Any) -> tuple[int, int]:
    """(prompt, completion) tokens a chat completion reports (0 where a server leaves usage out)."""
    usage = getattr(response, "usage", None)
    return (int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))
