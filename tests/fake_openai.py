"""A real OpenAI-compatible chat endpoint on 127.0.0.1 for tests: each request gets the next
scripted behaviour ("ok", "429", "500", "401", "slow", "garbage", "html", "null", "empty")."""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


class FakeOpenAI:
    """A chat-completions endpoint whose n-th request gets the n-th scripted behaviour ("ok" after)."""

    def __init__(self, responder=None) -> None:
        self.responder = responder  # messages -> reply text, for "ok" replies (default: "reply <n>")
        self.script: list[str] = []
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.delay_s = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.bodies.append(body)
                    fake.headers.append(dict(self.headers))
                    action = fake.script.pop(0) if fake.script else "ok"
                    number = len(fake.bodies)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                time.sleep(fake.delay_s + (1.0 if action == "slow" else 0.0))
                with fake.lock:  # counted out before replying, so the client never sees us early
                    fake.in_flight -= 1
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
        if action == "garbage":
            return self.send_raw(handler, 200, b"<html>not json at all", "application/json")
        if action == "html":
            return self.send_raw(handler, 200, b"<html>a web page</html>", "text/html")
        text = self.responder(body["messages"]) if self.responder else f"reply {number}"
        message = {"role": "assistant", "content": None if action == "null" else text}
        choices = [] if action == "empty" else [{"index": 0, "message": message, "finish_reason": "stop"}]
        self.send(handler, 200, {
            "id": f"cmpl-{number}", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": choices, "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        })

    def send(self, handler, status: int, payload: dict, headers: dict | None = None) -> None:
        self.send_raw(handler, status, json.dumps(payload).encode(), "application/json", headers)

    @staticmethod
    def send_raw(handler, status, data: bytes, content_type: str, headers: dict | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


@contextmanager
def serving(responder=None) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(responder)
    fake.thread.start()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
