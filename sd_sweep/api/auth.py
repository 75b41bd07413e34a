"""HTTP Basic authentication for our routes, with the credentials of the WebUI's ``--api-auth``.

The WebUI only protects the routes its own ``Api`` class adds; routes an extension adds to the
app get no check, so this module applies the same one: ``--api-auth "user:pass,user2:pass2"``
turns on HTTP Basic for every ``/sweep/v1`` route (401 with ``WWW-Authenticate: Basic``
without valid credentials); without it the routes are as open as the WebUI's own API.

With ``--gradio-auth`` the WebUI's page needs a login, and the Sweeps tab shows our pages in a
frame of it, so our routes then ask for a login too: a request passes with the gradio login
session of the WebUI's app (the ``access-token`` cookie gradio's ``/login`` sets, checked against
the app's ``tokens`` as gradio's ``get_current_user`` does) or with the ``--api-auth``
credentials. A browser logged into the WebUI sees the tab without a second login; a request
with neither gets 401.
"""

import base64
import binascii
import secrets
import sys
from collections.abc import Callable
from typing import Any

from fastapi import Depends, HTTPException, Request
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


def basic_ok(request: Request, credentials: Credentials) -> bool:
    """Whether the request's ``Authorization: Basic`` header names one of ``credentials``."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if not credentials or scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return False
    return bool(sep) and check_credentials(credentials, user, password)


def gradio_login_on(app: Any) -> bool:
    """Whether ``app`` (the WebUI's gradio app) asks for a login (``--gradio-auth``)."""
    return getattr(app, "auth", None) is not None


def gradio_user(app: Any, request: Request) -> str | None:
    """The user of the gradio login session the request's cookie names, or ``None``.

    Gradio 3.41 (``gradio/routes.py`` ``get_current_user``) reads the cookie ``access-token`` or
    ``access-token-unsecure``; gradio 4 appends the app's ``cookie_id`` to both names. The token
    must be one of the app's ``tokens`` (set by its ``/login``, removed by its ``/logout``).
    """
    tokens = getattr(app, "tokens", None)
    if not isinstance(tokens, dict):
        return None
    names = ["access-token", "access-token-unsecure"]
    cookie_id = getattr(app, "cookie_id", None)
    if isinstance(cookie_id, str) and cookie_id:
        names = [f"{name}-{cookie_id}" for name in names] + names
    for name in names:
        token = request.cookies.get(name)
        if token and token in tokens:
            return str(tokens[token])
    return None


def authorized(request: Request, credentials: Credentials, app: Any = None) -> bool:
    """The rule of every ``/sweep/v1`` route: open without ``--api-auth`` and ``--gradio-auth``;
    else the ``--api-auth`` credentials or (with ``--gradio-auth``) the WebUI's login session."""
    login = gradio_login_on(app)
    if not credentials and not login:
        return True
    return basic_ok(request, credentials) or (login and gradio_user(app, request) is not None)


def make_auth_dependency(credentials: Credentials, app: Any = None) -> Callable[..., Any]:
    """A FastAPI dependency demanding one of ``credentials`` over HTTP Basic (or, with
    ``--gradio-auth``, the WebUI's login session); it also names the scheme in the OpenAPI document."""
    basic = HTTPBasic(auto_error=False, description="the WebUI's --api-auth credentials")

    def require_auth(request: Request, given: HTTPBasicCredentials | None = Depends(basic)) -> None:  # noqa: B008
        if given is not None and check_credentials(credentials, given.username, given.password):
            return
        if gradio_login_on(app) and gradio_user(app, request) is not None:
            return
        raise HTTPException(
            status_code=401,
            detail=[{"field": "authorization", "value": None, "message": "incorrect or missing username/password"}],
            headers={"WWW-Authenticate": "Basic"},
        )

    return require_auth
