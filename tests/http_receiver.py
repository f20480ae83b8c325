"""The other end of our outbound HTTP calls in tests: a POST receiver on a real socket.

Stands in for Callbridge's webhook endpoint (seen from the Genesys emulator), the screen-pop
data action, and a Slack-style alert hook. Records each request as (headers, body, time);
`headers` is the case-insensitive message http.server parsed.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpReceiver:
    """Answers with the queued `statuses`, then `status`, with `answer` (JSON or bytes) after `delay`."""

    def __init__(self, path: str = "/", status: int = 200, answer: Any = b"", delay: float = 0.0) -> None:
        self.requests: list[tuple[Any, bytes, float]] = []
        self.statuses: list[int] = []
        self.status, self.answer, self.delay = status, answer, delay
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body, time.time()))
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                answer = receiver.answer
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    if not isinstance(answer, bytes):
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the caller gave up waiting
                finally:
                    receiver.got.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
