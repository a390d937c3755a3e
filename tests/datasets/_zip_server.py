"""A small HTTP server on 127.0.0.1 serving zips, for the download cache's tests."""

from __future__ import annotations

import http.server
import io
import threading
import zipfile


class ZipServer(http.server.ThreadingHTTPServer):
    """Serves a small zip (``a.csv`` naming the request's path) at any path on 127.0.0.1 and counts the requests
    (``hits``); :meth:`hold` may keep a request waiting (``/slow…`` until ``release`` is set)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ZipHandler)
        self.hits = 0
        self.requested = threading.Event()
        self.release = threading.Event()

    def url(self, name):
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"

    def hold(self, path):
        if path.startswith("/slow"):
            self.requested.set()
            self.release.wait(10)


class ZipHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.hits += 1
        self.server.hold(self.path)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr("a.csv", f"path,value\n{self.path},1\n")
        body = buffer.getvalue()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(server, monkeypatch):
    """Run ``server`` (a :class:`ZipServer`) for one test with downloads allowed; shut down after it."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("POWERGRID_OFFLINE", raising=False)
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
