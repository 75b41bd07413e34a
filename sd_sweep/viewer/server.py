"""``python -m sd_sweep view``: the viewer and one run's routes on a standard library HTTP server.

The URLs are the WebUI's (``/sweep/v1/viewer/``, ``/sweep/v1/runs/NAME/...``), so the page is the
same everywhere.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sd_sweep.viewer import STATIC
from sd_sweep.viewer.files import thumb_media_type
from sd_sweep.viewer.service import ViewerError, ViewerService

PREFIX = "/sweep/v1"
MAX_BODY = 1 << 20


def viewer_url(host: str, port: int, run: str) -> str:
    return f"http://{host}:{port}{PREFIX}/viewer/?run={quote(run)}"


def static_file(name: str) -> Path | None:
    """A file of the page, or ``None`` (names outside ``static/`` included)."""
    path = (STATIC / (name or "index.html")).resolve()
    if path.parent != STATIC or not path.is_file():
        return None
    return path


class _Handler(BaseHTTPRequestHandler):
    service: ViewerService
    quiet = True

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, media: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, document: Any, status: int = 200) -> None:
        self._send(status, "application/json", json.dumps(document, ensure_ascii=False).encode())

    def _file(self, path: Path, media: str | None = None, cache: bool = False) -> None:
        media = media or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = {"Cache-Control": "max-age=3600"} if cache else {"Cache-Control": "no-cache"}
        self._send(200, media, path.read_bytes(), headers)

    def _error(self, exc: ViewerError) -> None:
        self._json({"detail": [p.as_dict() for p in exc.problems]}, exc.status)

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            if method == "GET" and path in ("/", PREFIX, f"{PREFIX}/viewer"):
                target = f"{PREFIX}/viewer/?run={quote(self.service.only or '')}"
                self._send(302, "text/plain", b"", {"Location": target})
                return
            if method == "GET" and path.startswith(f"{PREFIX}/viewer/"):
                found = static_file(unquote(path[len(f"{PREFIX}/viewer/") :]))
                if found is None:
                    raise ViewerError(404, "path", path, "no such file of the viewer")
                self._file(found)
                return
            if method == "GET" and path == f"{PREFIX}/runs":
                self._json({"runs": self.service.runs()})
                return
            parts = path[len(f"{PREFIX}/runs/") :].split("/", 2) if path.startswith(f"{PREFIX}/runs/") else []
            if len(parts) < 2:
                raise ViewerError(404, "path", path, "no such route")
            name, what, rest = unquote(parts[0]), parts[1], unquote(parts[2]) if len(parts) > 2 else ""
            if method == "GET" and what == "index" and not rest:
                self._json(self.service.index(name))
            elif method == "GET" and what == "thumbs" and rest:
                self._file(self.service.thumb(name, rest), thumb_media_type(), cache=True)
            elif method == "GET" and what == "files" and rest:
                self._file(self.service.file(name, rest))
            elif method == "POST" and what in ("sheets", "zip") and not rest:
                body = self._body()
                call = self.service.sheets if what == "sheets" else self.service.images
                filename, media, data = call(name, body)
                self._send(200, media, data, {"Content-Disposition": f'attachment; filename="{filename}"'})
            else:
                raise ViewerError(404, "path", path, f"no such route for {method}")
        except ViewerError as exc:
            self._error(exc)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ViewerError(413, "body", length, f"larger than {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise ViewerError(422, "body", raw[:80].decode("utf-8", "replace"), f"not valid JSON: {exc}") from None

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("GET")

    def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self._route("POST")


def make_server(run_dir: Path | str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server (not yet serving) of the viewer over ``run_dir``; port 0 takes a free port."""
    run_dir = Path(run_dir).resolve()
    service = ViewerService(run_dir.parent, only=run_dir.name)
    service.run_dir(run_dir.name)
    handler = type("ViewerHandler", (_Handler,), {"service": service})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def serve_in_thread(run_dir: Path | str, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; returns the server and the viewer's address (for tests)."""
    server = make_server(run_dir, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, viewer_url(str(bound_host), int(bound_port), Path(run_dir).resolve().name)


__all__ = ["HTTPStatus", "make_server", "serve_in_thread", "static_file", "viewer_url"]
