"""Who may read the dashboard and /metrics (collector/access.py), over real HTTP."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import yaml

from collector import PROJECT_ROOT
from collector.proxies import is_loopback
from tests.conftest import free_port

TOKEN = secrets.token_hex(16)  # 32 characters
DASHBOARD = ("/dashboard", "/dashboard/data", "/dashboard/proof?site=shop")


def refused_for_want_of_a_token(response: httpx.Response) -> bool:
    return (response.status_code == 403 and response.json()["error"] == "forbidden"
            and "BINOME_DASHBOARD_TOKEN" in response.json()["detail"])


# --- without a token: loopback clients with a loopback Host -------------------------


def test_a_forwarded_client_is_not_loopback_behind_a_proxy(start_collector: Any) -> None:
    """Issue 20's reproduction: behind nginx on the same host, every peer is loopback."""
    collector = start_collector(trusted_proxy_header="X-Forwarded-For")
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    for path in DASHBOARD:
        assert refused_for_want_of_a_token(httpx.get(collector.url + path, headers=forwarded))
        assert httpx.get(collector.url + path, timeout=30).status_code == 200
        # The proxy's own machine, as the proxy forwards it: still loopback.
        local = {"X-Forwarded-For": "127.0.0.1"}
        assert httpx.get(collector.url + path, headers=local, timeout=30).status_code == 200


def test_a_host_that_is_not_loopback_is_refused(start_collector: Any) -> None:
    """Issue 20's reproduction: DNS rebinding points an attacker's name at 127.0.0.1."""
    collector = start_collector()
    for path in DASHBOARD:
        rebound = httpx.get(collector.url + path, headers={"Host": "rebind.attacker.example"})
        assert refused_for_want_of_a_token(rebound)
        for host in ("localhost", f"localhost:{collector.port}", f"127.0.0.1:{collector.port}",
                     f"[::1]:{collector.port}"):
            answer = httpx.get(collector.url + path, headers={"Host": host}, timeout=30)
            assert answer.status_code == 200, host


def test_loopback_names() -> None:
    for host in ("localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"):
        assert is_loopback(host), host
    for host in ("", "0.0.0.0", "::", "192.168.1.10", "localhost.attacker.example",
                 "127.0.0.1.nip.io", "example.com"):
        assert not is_loopback(host), host


def serve(tmp_path: Path, database_url: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """`binome serve` with these arguments, its output in tmp_path/serve.log."""
    environment = {k: v for k, v in os.environ.items() if k != "BINOME_DASHBOARD_TOKEN"}
    environment.update(BINOME_DATABASE_URL=database_url, BINOME_MAINTENANCE_MINUTES="0",
                       BINOME_SPOOL_DIR=str(tmp_path / "spool"), **env)
    log = (tmp_path / "serve.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "collector.cli", "serve", *args],
                            env=environment, stdout=log, stderr=subprocess.STDOUT,
                            cwd=PROJECT_ROOT)


def test_a_non_loopback_bind_without_a_token_serves_no_dashboard(
        tmp_path: Path, database_url: str) -> None:
    port = free_port()
    process = serve(tmp_path, database_url, "--host", "0.0.0.0", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        # Even a loopback client with a loopback Host: the bind says it is not local.
        for path in DASHBOARD:
            refusal = httpx.get(url + path)
            assert refused_for_want_of_a_token(refusal)
            assert "0.0.0.0" in refusal.json()["detail"]
    finally:
        process.terminate()
        process.wait(20)
    said = [line for line in (tmp_path / "serve.log").read_text().splitlines()
            if "dashboard is not served" in line]
    assert len(said) == 1 and "BINOME_DASHBOARD_TOKEN" in said[0] and "0.0.0.0" in said[0]


def test_a_short_token_is_refused_at_start(tmp_path: Path, database_url: str) -> None:
    process = serve(tmp_path, database_url, "--port", str(free_port()),
                    BINOME_DASHBOARD_TOKEN="x" * 31)
    assert process.wait(30) == 2
    output = (tmp_path / "serve.log").read_text().strip().splitlines()
    assert output == ["binome: BINOME_DASHBOARD_TOKEN: shorter than 32 characters; "
                      "make one with `openssl rand -hex 32`"]


# --- with a token ----------------------------------------------------------------


def signed_in_cookie(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie


def test_bearer_token(start_collector: Any) -> None:
    collector = start_collector(dashboard_token=TOKEN)
    for path in DASHBOARD:
        assert httpx.get(collector.url + path).status_code == 401
        wrong = {"Authorization": "Bearer " + "y" * 32}
        assert httpx.get(collector.url + path, headers=wrong).status_code == 401
        right = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(collector.url + path, headers=right, timeout=30).status_code == 200
    # A token in the data's URL is not a way in: only the page trades one for a cookie.
    assert httpx.get(collector.url + "/dashboard/data", params={"token": TOKEN}).status_code == 401


def test_a_token_in_the_url_is_traded_for_a_cookie(start_collector: Any) -> None:
    collector = start_collector(dashboard_token=TOKEN)
    signed_in = httpx.get(collector.url + "/dashboard",
                          params={"token": TOKEN, "site": "demo", "from": "2026-01-01"})
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/dashboard?site=demo&from=2026-01-01"
    set_cookie = signed_in.headers["set-cookie"]
    assert TOKEN not in set_cookie
    morsel = signed_in_cookie(signed_in)["binome_dashboard"]
    assert morsel["httponly"] and morsel["samesite"] == "strict"
    assert morsel["path"] == "/dashboard" and not morsel["secure"]
    cookies = {"binome_dashboard": morsel.value}
    for path in DASHBOARD:
        answer = httpx.get(collector.url + path, cookies=cookies, timeout=30)
        assert answer.status_code == 200, answer.text
    forged = {"binome_dashboard": morsel.value[:-1] + ("0" if morsel.value[-1] != "0" else "1")}
    assert httpx.get(collector.url + "/dashboard/data", cookies=forged).status_code == 401
    assert httpx.get(collector.url + "/dashboard/data",
                     cookies={"binome_dashboard": TOKEN}).status_code == 401
    # A wrong token is no sign-in; a browser gets the sign-in form.
    wrong = httpx.get(collector.url + "/dashboard", params={"token": "y" * 32},
                      headers={"Accept": "text/html"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert 'action="/dashboard/sign-in"' in wrong.text and 'method="post"' in wrong.text


def test_the_sign_in_form(start_collector: Any) -> None:
    collector = start_collector(dashboard_token=TOKEN)
    signed_in = httpx.post(collector.url + "/dashboard/sign-in", data={"token": TOKEN})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"
    value = signed_in_cookie(signed_in)["binome_dashboard"].value
    page = httpx.get(collector.url + "/dashboard", cookies={"binome_dashboard": value})
    assert page.status_code == 200 and "dashboard/assets/dashboard.js" in page.text
    wrong = httpx.post(collector.url + "/dashboard/sign-in", data={"token": "y" * 32})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    too_long = httpx.post(collector.url + "/dashboard/sign-in", data={"token": "y" * 5000})
    assert too_long.status_code == 413


def test_the_cookie_is_secure_when_the_trusted_proxy_forwards_https(start_collector: Any
                                                                    ) -> None:
    behind = start_collector(dashboard_token=TOKEN, trusted_proxy_header="X-Forwarded-For")
    direct = start_collector(dashboard_token=TOKEN)
    for collector, secure in ((behind, True), (direct, False)):
        signed_in = httpx.get(collector.url + "/dashboard", params={"token": TOKEN},
                              headers={"X-Forwarded-Proto": "https"})
        assert bool(signed_in_cookie(signed_in)["binome_dashboard"]["secure"]) is secure
    forwarded = httpx.get(behind.url + "/dashboard", params={"token": TOKEN},
                          headers={"Forwarded": 'for=203.0.113.7;proto="https"'})
    assert signed_in_cookie(forwarded)["binome_dashboard"]["secure"]


def test_without_a_token_there_is_nothing_to_sign_in_with(start_collector: Any) -> None:
    collector = start_collector()
    refusal = httpx.post(collector.url + "/dashboard/sign-in", data={"token": TOKEN})
    assert refused_for_want_of_a_token(refusal)


# --- /metrics ---------------------------------------------------------------------


def test_metrics_token(start_collector: Any) -> None:
    """With BINOME_METRICS_TOKEN, /metrics answers only its Bearer token; as
    prometheus/prometheus.yml sends it."""
    collector = start_collector(metrics_token=TOKEN)
    assert httpx.get(collector.url + "/metrics").status_code == 401
    wrong = httpx.get(collector.url + "/metrics", headers={"Authorization": "Bearer " + "y" * 32})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(collector.url + "/metrics", params={"token": TOKEN}).status_code == 401
    right = httpx.get(collector.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and "binome_beacons_received_total" in right.text
    scrape = yaml.safe_load((PROJECT_ROOT / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].startswith("/run/secrets/")
