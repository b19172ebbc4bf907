"""A real HTTP server on 127.0.0.1 that misbehaves on request, for the download tests.

URL paths are ``/<mode>/<file>``: good, missing (404), broken (500), corrupt (a valid gzip of
the wrong content), truncated (half the body, then the connection drops), stall (a few bytes,
then silence until the test ends), slow (a byte every 50 ms: a download that only a cancel ends).
"""
from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    release = threading.Event()

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        mode, _, name = self.path.strip("/").partition("/")
        if mode in ("missing", "broken"):
            self.send_error(404 if mode == "missing" else 500)
            return
        body = self.files[name]
        if mode == "corrupt":
            body = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x03abc")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "truncated":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        if mode == "slow":
            for i in range(len(body)):
                if self.release.wait(0.05):
                    return
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
            return
        if mode == "stall":
            self.wfile.write(body[:10])
            self.wfile.flush()
            self.release.wait(10)
            return
        self.wfile.write(body)


@contextmanager
def serve(files: dict[str, bytes]) -> Iterator[str]:
    """Serve ``files`` by name; yields the base URL."""
    _Handler.files = files
    _Handler.release.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def release_stalled() -> None:
    _Handler.release.set()
