"""The webhook message: delivered as JSON, not retried when the receiver refuses it, never fatal when it is down."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adop.studio.notify import EVENT, post_json, run_message


@pytest.fixture
def receiver() -> Iterator[tuple[str, list]]:
    got: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append((self.path, self.headers["Content-Type"],
                        json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(400 if self.path == "/refuse" else 200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", got
    server.shutdown()


def test_message_is_posted_as_json(receiver: tuple[str, list]) -> None:
    url, got = receiver
    message = run_message(studio="alpha", shot="s1", version=2, run_id="r", state="Failed",
                          reason="only 2 usable photo(s)", links={}, metrics={})
    assert post_json(url + "/hook", message)
    assert got == [("/hook", "application/json", {**message, "event": EVENT})]


def test_a_refusal_is_not_retried(receiver: tuple[str, list]) -> None:
    url, got = receiver
    assert not post_json(url + "/refuse", {"run_id": "r"}, attempts=3)
    assert len(got) == 1


def test_an_unreachable_receiver_only_costs_the_message() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not post_json(f"http://127.0.0.1:{port}/hook", {"run_id": "r"}, attempts=1, timeout_s=2)
