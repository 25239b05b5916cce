"""A loopback HTTP server that plays scripted responses, for download tests (no real network).

    def test_x(http_server):
        url = http_server.add("/a.jpg", Reply(500), Reply(200, jpeg_bytes))   # 500 then 200
        ...
        assert http_server.hits["/a.jpg"] == 2

Each path holds a list of replies: request n gets reply n, the last one repeats. Import the
fixture into a test module with `from tests.http_server import http_server  # noqa: F401`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line (a slow server)
    send_length: bool = True  # False: no Content-Length, body ends when the socket closes
    body_delay_s: float = 0.0  # pause after each `chunk` bytes of body (a slow stream)
    chunk: int = 64 * 1024  # body write size; 1 with body_delay_s drips byte by byte


class ScriptedServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.hits: Counter[str] = Counter()
        self.user_agents: list[str] = []
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                with server.lock:
                    n = server.hits[path]
                    server.hits[path] += 1
                    server.user_agents.append(self.headers.get("User-Agent", ""))
                    replies = server.routes.get(path) or [Reply(404, b"not found")]
                reply = replies[min(n, len(replies) - 1)]
                if reply.delay_s and server.closing.wait(reply.delay_s):
                    return
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if reply.send_length:
                        self.send_header("Content-Length", str(len(reply.body)))
                    else:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    for start in range(0, len(reply.body), reply.chunk):
                        self.wfile.write(reply.body[start : start + reply.chunk])
                        self.wfile.flush()
                        if reply.body_delay_s and server.closing.wait(reply.body_delay_s):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout, size cap): that is the test

        self.lock = threading.Lock()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address) -> None:  # a client that hung up: the test's point
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, *replies: Reply) -> str:
        """Script `path`; returns its full URL."""
        with self.lock:
            self.routes[path] = list(replies) or [Reply()]
        return self.url(path)

    def start(self) -> ScriptedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        time.sleep(0.01)


@pytest.fixture
def http_server():
    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.stop()
