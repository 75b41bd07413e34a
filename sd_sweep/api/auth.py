"""HTTP Basic authentication for our routes, with the credentials of the WebUI's ``--api-auth``.

The WebUI only protects the routes its own ``Api`` class adds; routes an extension adds to the
app get no check, so this module applies the same one: ``--api-auth "user:pass,user2:pass2"``
turns on HTTP Basic for every ``/sweep/v1`` route (401 with ``WWW-Authenticate: Basic``
without valid credentials); without it the routes are as open as the WebUI's own API.
"""

import secrets
import sys
from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials

Credentials = dict[str, str]


def parse_api_auth(value: str | None) -> Credentials:
    """``"user:pass,user2:pass2"`` -> ``{"user": "pass", ...}``; entries without ``:`` are ignored.

    Only the first ``:`` separates user from password, so passwords may contain ``:``.
    """
    credentials: Credentials = {}
    for entry in (value or "").split(","):
        user, sep, password = entry.strip().partition(":")
        if sep and user:
            credentials[user] = password
    return credentials


def webui_api_auth() -> str | None:
    """``shared.cmd_opts.api_auth`` of the running WebUI, or ``None`` outside one."""
    shared = sys.modules.get("modules.shared")
    cmd_opts = getattr(shared, "cmd_opts", None)
    value = getattr(cmd_opts, "api_auth", None)
    return value if isinstance(value, str) and value else None


def check_credentials(credentials: Credentials, user: str, password: str) -> bool:
    """Constant-time comparison of user and password against every configured pair."""
    ok = False
    for known_user, known_password in credentials.items():
        user_ok = secrets.compare_digest(user.encode(), known_user.encode())
        password_ok = secrets.compare_digest(password.encode(), known_password.encode())
        ok |= user_ok and password_ok
    return ok


def make_auth_dependency(credentials: Credentials) -> Callable[..., Any]:
    """A FastAPI dependency demanding one of ``credentials`` over HTTP Basic."""
    basic = HTTPBasic(auto_error=False, description="the WebUI's --api-auth credentials")

    def require_auth(given: HTTPBasicCredentials | None = Depends(basic)) -> None:  # noqa: B008
        if given is not None and check_credentials(credentials, given.username, given.password):
            return
        raise HTTPException(
            status_code=401,
            detail=[{"field": "authorization", "value": None, "message": "incorrect or missing username/password"}],
            headers={"WWW-Authenticate": "Basic"},
        )

    return require_auth
