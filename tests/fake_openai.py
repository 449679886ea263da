"""A real OpenAI-compatible chat endpoint on 127.0.0.1 for tests.

Each request gets the next scripted behaviour:
  "ok"        a reply ("reply <n>", or the responder's text)
  "429", "500", "401"   that status (429 with Retry-After: 0)
  "slow"      an ok reply after one second
  "garbage", "html"     a 200 whose body is not a chat completion
  "null", "empty"       no content / no choices
  "length"    the text cut short, finish_reason "length" (as a server at max_tokens)
  "null_length"         no content and finish_reason "length" (all tokens spent before any text)
  "reject500" a 500 whose body says the request was invalid (llama.cpp reports unsupported
              parameters that way)
  "cut_body"  a 200 whose body stops half-way (Content-Length promises more; the connection closes)
  "huge"      a reply of `huge_chars` characters
  "echo_key"  a 401 whose message quotes the Authorization header (as some servers do)

Like llama.cpp's server it echoes whatever model name it is asked for, lists `models` at
GET /v1/models (None: 404, as servers without the route), and with `serial=True` works on one
request at a time, finishing a request even when its client has given up.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class FakeOpenAI:
    """A chat-completions endpoint whose n-th request gets the n-th scripted behaviour ("ok" after)."""

    def __init__(self, responder=None, models: list[str] | None = None, serial: bool = False, port: int = 0) -> None:
        self.responder = responder  # messages -> reply text, for "ok" replies (default: "reply <n>")
        self.models = models
        self.script: list[str] = []
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.model_lists = 0  # GET /v1/models requests
        self.delay_s = 0.0
        self.huge_chars = 2_000_000
        self.in_flight = 0
        self.max_in_flight = 0
        self.waiting = 0  # requests received and not yet answered (queued behind a serial worker too)
        self.max_waiting = 0
        self.lock = threading.Lock()
        self.worker = threading.Lock() if serial else None  # one request at a time, like llama.cpp
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def seen(self) -> int:
        return len(self.bodies)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                with fake.lock:
                    fake.model_lists += 1
                if self.path != "/v1/models" or fake.models is None:
                    return fake.send(self, 404, {"error": {"message": f"no route {self.path}"}})
                fake.send(self, 200, {"object": "list", "data": [
                    {"id": name, "object": "model", "owned_by": "me", "created": 0} for name in fake.models]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.bodies.append(body)
                    fake.headers.append(dict(self.headers))
                    action = fake.script.pop(0) if fake.script else "ok"
                    number = len(fake.bodies)
                    fake.waiting += 1
                    fake.max_waiting = max(fake.max_waiting, fake.waiting)
                if fake.worker is not None:
                    fake.worker.acquire()
                try:
                    with fake.lock:
                        fake.in_flight += 1
                        fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                    time.sleep(fake.delay_s + (1.0 if action == "slow" else 0.0))
                    with fake.lock:  # counted out before replying, so the client never sees us early
                        fake.in_flight -= 1
                        fake.waiting -= 1
                finally:
                    if fake.worker is not None:
                        fake.worker.release()
                try:
                    fake.reply(self, action, body, number)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on a slow reply

        return Handler

    def reply(self, handler: BaseHTTPRequestHandler, action: str, body: dict, number: int) -> None:
        if handler.path != "/v1/chat/completions":
            return self.send(handler, 404, {"error": {"message": f"no route {handler.path}"}})
        if action in ("429", "500", "401"):
            headers = {"Retry-After": "0"} if action == "429" else {}
            error = {"error": {"message": f"scripted {action}\nsecond line"}}
            return self.send(handler, int(action), error, headers)
        if action == "reject500":
            return self.send(handler, 500, {"error": {
                "message": "Llama.create_chat_completion() got an unexpected keyword argument 'bogus'",
                "type": "internal_server_error", "param": None, "code": None}})
        if action == "echo_key":
            key = handler.headers.get("Authorization", "")
            return self.send(handler, 401, {"error": {"message": f"Incorrect API key provided: {key}"}})
        if action == "garbage":
            return self.send_raw(handler, 200, b"<html>not json at all", "application/json")
        if action == "html":
            return self.send_raw(handler, 200, b"<html>a web page</html>", "text/html")
        text = self.responder(body["messages"]) if self.responder else f"reply {number}"
        if action == "huge":
            text = "x" * self.huge_chars
        if action == "cut_body":
            data = json.dumps(self.completion(body, number, text, "stop")).encode()
            return self.send_raw(handler, 200, data[: len(data) // 2], "application/json",
                                 length=len(data))
        reason = "length" if action in ("length", "null_length") else "stop"
        if action == "length":
            text = text[: max(len(text) // 2, 1)]
        content = None if action in ("null", "null_length") else text
        payload = self.completion(body, number, content, reason)
        if action == "empty":
            payload["choices"] = []
        self.send(handler, 200, payload)

    @staticmethod
    def completion(body: dict, number: int, content: str | None, reason: str) -> dict:
        return {
            "id": f"cmpl-{number}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": reason}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }

    def send(self, handler, status: int, payload: dict, headers: dict | None = None) -> None:
        self.send_raw(handler, status, json.dumps(payload).encode(), "application/json", headers)

    @staticmethod
    def send_raw(handler, status, data: bytes, content_type: str, headers: dict | None = None,
                 length: int | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data) if length is None else length))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
        if length is not None and length != len(data):
            handler.close_connection = True


@contextmanager
def serving(responder=None, **options) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(responder, **options)
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()


def _die_of_illegal_instruction(messages: list[dict]) -> str:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGILL)  # what a llama.cpp built for a wider CPU than it runs on does
    raise SystemExit("SIGILL did not end this process")


def _let_sigill_kill() -> None:
    """A real illegal instruction kills whatever the signal mask says; a sent SIGILL does not, and CI
    runners start the tests with it blocked (inherited through fork and exec). Unblocked here, in the
    main thread before any handler thread starts, so every thread inherits it. No core file."""
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGILL, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGILL})


if __name__ == "__main__":  # a stand-in for llama.cpp's server process: fake_openai.py PORT MODEL [sigill]
    import sys

    responder = _die_of_illegal_instruction if sys.argv[3:] == ["sigill"] else None
    if responder is not None:
        _let_sigill_kill()
    FakeOpenAI(responder, models=[sys.argv[2]], serial=True, port=int(sys.argv[1])).httpd.serve_forever(0.05)
