"""JSON over ``urllib``: the transport shared by the sweep client and the sdapi backend (standard library only)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sd_sweep.core.errors import SweepError


class SweepHTTPError(SweepError):
    """An answer with an error status; ``problems`` holds the server's ``{field, value, message}``."""

    def __init__(self, status: int, url: str, body: bytes) -> None:
        self.status = status
        self.url = url
        self.problems: list[dict[str, Any]] = []
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            detail = body[:200].decode("utf-8", "replace")
        if isinstance(detail, list):
            self.problems = [
                p if isinstance(p, dict) else {"field": "", "value": None, "message": str(p)} for p in detail
            ]
        elif detail:
            self.problems = [{"field": "", "value": None, "message": str(detail)}]
        text = "; ".join(_problem_text(p) for p in self.problems) or "no details"
        super().__init__(f"HTTP {status} from {url}: {text}")


def _problem_text(problem: dict[str, Any]) -> str:
    field = problem.get("field") or ""
    message = problem.get("message") or problem.get("msg") or ""
    value = problem.get("value")
    return f"{field}: {message}" + (f" (got {value!r})" if value is not None else "") if field else str(message)


def auth_header(auth: str | tuple[str, str] | None) -> dict[str, str]:
    """``{"Authorization": "Basic ..."}`` for ``"user:pass"`` or ``(user, pass)``."""
    if not auth:
        return {}
    user, password = auth if isinstance(auth, tuple) else auth.split(":", 1) if ":" in auth else (auth, "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class HTTP:
    """JSON over ``urllib``: the shared part of the sweep client and the sdapi backend."""

    def __init__(self, url: str, auth: str | tuple[str, str] | None = None, timeout: float = 600.0) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            msg = f"not an http(s) URL: {url!r}"
            raise SweepError(msg)
        self.url = url.rstrip("/")
        self.headers = auth_header(auth)
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None) -> bytes:
        url = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {**self.headers, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise SweepHTTPError(exc.code, url, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            msg = f"cannot reach {url}: {reason}"
            raise SweepError(msg) from None

    def json(self, method: str, path: str, body: Any = None, *, query: dict[str, Any] | None = None) -> Any:
        return json.loads(self.request(method, path, body, query=query) or b"null")
