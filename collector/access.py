"""Who may read the dashboard and /metrics (the contract's section 3; SECURITY.md, "Who
may reach what").

With BINOME_DASHBOARD_TOKEN set, the dashboard wants that token: as
`Authorization: Bearer`, or given once (`GET /dashboard?token=` or the sign-in
form) and traded for a cookie, answered with a redirect that takes the token out
of the address bar and the history (issue 20). The cookie holds an HMAC of the
token, never the token: a changed token signs every browser out.

Without a token, only a client really on loopback: the address the trusted
proxy settings resolve (collector/proxies.py, as the rate limit), not the
socket's peer (behind nginx on the same host every visitor's peer is loopback),
and a `Host` that names loopback (a page of another site that rebinds its DNS to
127.0.0.1 sends its own name). Bound to a non-loopback address without a token,
the collector does not serve the dashboard at all.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from collector.proxies import ClientAddress, is_loopback
from collector.settings import Settings

COOKIE = "binome_dashboard"
COOKIE_PATH = "/dashboard"
# A wall screen stays signed in for a month; changing the token ends it sooner.
COOKIE_MAX_AGE = 30 * 86400
SET_TOKEN = ("set BINOME_DASHBOARD_TOKEN (32 characters or more, e.g. `openssl rand -hex 32`) "
             "and sign in with it")


def _host_name(header: str) -> str:
    """The name of a Host header, without its port: `[::1]:8000` -> `::1`."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def bind_refusal(settings: Settings) -> str | None:
    """Why `binome serve` on settings.host does not serve the dashboard, if it does not."""
    if settings.dashboard_token or is_loopback(settings.host):
        return None
    return (f"the dashboard is not served: {settings.host} is not a loopback address and "
            f"BINOME_DASHBOARD_TOKEN is not set; {SET_TOKEN}")


def _bearer(request: Request) -> str | None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class BearerToken:
    """A route guarded by `Authorization: Bearer TOKEN` (/metrics with BINOME_METRICS_TOKEN)."""

    def __init__(self, token: str | None) -> None:
        self._token = token

    def refusal(self, request: Request) -> Response | None:
        if self._token is None:
            return None
        given = _bearer(request)
        if given is not None and _same(given, self._token):
            return None
        return unauthorized()


class DashboardAccess:
    def __init__(self, settings: Settings) -> None:
        self._token = settings.dashboard_token
        # The cookie's value: an HMAC of the token, so that a cookie read off a
        # disk is not the token itself.
        self._cookie = (hmac.new(self._token.encode(), b"binome dashboard cookie",
                                 hashlib.sha256).hexdigest() if self._token else None)
        self._client = ClientAddress(settings.trusted_proxy_header, settings.trusted_proxy_hops,
                                     settings.trusted_proxies)
        self._behind_proxy = bool(settings.trusted_proxy_header)
        self._bind_refusal = bind_refusal(settings)

    def refusal(self, request: Request) -> Response | None:
        """None when `request` may read the dashboard, else the answer to give it."""
        if self._token is not None:
            given = _bearer(request)
            if given is not None and _same(given, self._token):
                return None
            cookie = request.cookies.get(COOKIE)
            if cookie is not None and _same(cookie, self._cookie or ""):
                return None
            return unauthorized()
        if self._bind_refusal:
            return _forbidden(self._bind_refusal)
        peer = request.client.host if request.client else ""
        if not is_loopback(self._client.resolve(peer, request.headers)):
            return _forbidden(f"without a token only loopback clients see the dashboard; "
                              f"{SET_TOKEN}")
        if not is_loopback(_host_name(request.headers.get("host", ""))):
            return _forbidden(f"without a token the dashboard answers only to a loopback "
                              f"Host (localhost, 127.0.0.1, [::1]); {SET_TOKEN}")
        return None

    def sign_in(self, request: Request, given: str) -> Response | None:
        """The cookie and a redirect to the page without the token, when `given` is
        the token (None otherwise). The rest of the query (the filters) is kept."""
        if self._token is None or not _same(given, self._token):
            return None
        query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
        response = RedirectResponse("/dashboard" + ("?" + query if query else ""), 303,
                                    headers={"Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer"})
        response.set_cookie(COOKIE, self._cookie or "", max_age=COOKIE_MAX_AGE,
                            path=COOKIE_PATH, secure=self._https(request), httponly=True,
                            samesite="strict")
        return response

    def wrong_token(self) -> Response:
        if self._token is None:
            return _forbidden(f"BINOME_DASHBOARD_TOKEN is not set: there is nothing to sign in "
                              f"with; {SET_TOKEN}")
        return unauthorized()

    def _https(self, request: Request) -> bool:
        """Whether the browser came over https: the connection's scheme, or behind a
        trusted proxy the protocol it forwards. A client that forges https only
        makes its own cookie Secure."""
        if request.url.scheme == "https":
            return True
        if not self._behind_proxy:
            return False
        proto = request.headers.get("x-forwarded-proto", "").rpartition(",")[2]
        for element in reversed(request.headers.get("forwarded", "").split(",")):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "proto":
                    proto = proto or value
        return proto.strip().strip('"').lower() == "https"


def unauthorized() -> Response:
    return JSONResponse({"error": "unauthorized", "detail": "token required"}, 401,
                        headers={"WWW-Authenticate": "Bearer"})


def _forbidden(detail: str) -> Response:
    return JSONResponse({"error": "forbidden", "detail": detail}, 403)
