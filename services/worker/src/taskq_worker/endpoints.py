"""The worker's small HTTP server: Prometheus metrics and health probes on METRICS_PORT."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def serve_endpoints(
    host: str,
    port: int,
    registry: CollectorRegistry,
    *,
    not_ready: Callable[[], str | None],
    not_live: Callable[[], str | None],
) -> ThreadingHTTPServer:
    """Start serving `/metrics`, `/health/live` and `/health/ready` in a daemon thread.

    Each probe answers 503 with the reason its callable gives, 200 when it gives None.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/health/live":
                self._probe(not_live())
            elif path == "/health/ready":
                self._probe(not_ready())
            else:
                self._reply(404, b'{"detail": "not found"}', "application/json")

        def _probe(self, problem: str | None) -> None:
            if problem is None:
                self._reply(200, b'{"status": "ok"}', "application/json")
            else:
                body = json.dumps({"status": problem}).encode()
                self._reply(503, body, "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the logs

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="endpoints", daemon=True).start()
    return server
