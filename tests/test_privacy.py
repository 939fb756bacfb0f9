"""Privacy by design over real HTTP (docs/privacy.md): personal data scrubbed from
what is kept, no IP address anywhere in the database, session ids that cannot be
linked across days, and the collector running as a least-privileged role."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import httpx

from tests.conftest import MOBILE_UA, create_login, make_beacon, stored, wait_for


def post(base: str, beacon: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(base + "/beacon", content=json.dumps(beacon),
                      headers={"Content-Type": "text/plain", "User-Agent": MOBILE_UA, **headers})


async def test_secrets_in_paths_and_queries_are_scrubbed(
    live_server: str, conn: asyncpg.Connection
) -> None:
    beacon = make_beacon(
        url="https://shop.example/account/jean.dupont%40example.fr/orders/100234567/"
            "reset-9f86d081884c7d659a2feaa0c55ad015?session=s3cr3tT0k3n&email=a%40b.fr"
            "&utm_source=crm&utm_medium=email&utm_campaign=relance-2026"
            "&utm_content=contact-00123456&utm_term=jane.doe%40mail.example#token=fr4gm3nt",
        dims={"page_type": "account", "crm_id": "0035g00000XyZab1AAAqQ3"},
    )
    assert post(live_server, beacon).status_code == 204
    [row] = await stored(conn, beacon["pv"])
    assert row["path"] == "/account/:email/orders/:id/:token"  # "reset" goes with its token
    assert (row["utm_source"], row["utm_campaign"], row["utm_content"], row["utm_term"]) == (
        "crm", "relance-2026", "contact-:id", ":email")
    assert json.loads(row["dims"]) == {"page_type": "account", "crm_id": ":token"}
    dump = json.dumps(dict(row), default=str)
    for secret in ("jean.dupont", "example.fr", "100234567", "9f86d0818", "s3cr3tT0k3n",
                   "a@b.fr", "00123456", "jane.doe", "fr4gm3nt", "0035g00000"):
        assert secret not in dump, secret


async def test_no_ip_address_anywhere_in_a_database_dump(
    start_collector: Any, conn: asyncpg.Connection, database_url: str
) -> None:
    """Addresses arrive in every header a proxy or CDN may set; none is stored."""
    collector = start_collector(trusted_proxy_header="X-Forwarded-For", rate_limit_per_minute=2)
    # Two IPv6 /64s: the rate limit keys IPv6 by its /64 (collector/ratelimit.py).
    addresses = ["203.0.113.77", "198.51.100.177", "2001:db8::7781", "2001:db8:0:1:0:0:0:7782"]
    pvs = []
    for i, address in enumerate(addresses * 2):
        beacon = make_beacon(site="demo" if i % 2 else "shop", url="https://shop.example/p/1")
        answer = post(collector.url, beacon, **{
            "X-Forwarded-For": f"{address}, {address}", "X-Real-IP": address,
            "Forwarded": f'for="{address}"', "CF-Connecting-IP": address,
            "True-Client-IP": address, "Origin": "https://shop.example"})
        assert answer.status_code == 204, answer.text
        pvs.append(beacon["pv"])
    for _ in range(4):  # over the limit too: rejected beacons are counted somewhere
        assert post(collector.url, make_beacon(),
                    **{"X-Forwarded-For": addresses[0]}).status_code == 429
    await wait_for(conn, "SELECT count(*) FROM binome.beacons WHERE pv = ANY($1)", pvs,
                   expect=len(pvs))
    await asyncio.sleep(1.2)  # the per-minute counters are flushed within a second
    collector.stop()  # and its log is complete

    dump = subprocess.run(["pg_dump", "--no-owner", database_url], capture_output=True,
                          text=True, check=True).stdout
    assert all(pv in dump for pv in pvs)  # the dump holds the beacons ...
    for address in addresses + ["2001:db8:0:1::7782", "203.0.113", "db8::77"]:
        assert address not in dump, address  # ... and no address
    log = collector.log_path.read_text()
    assert not any(address in log for address in addresses)


async def test_session_ids_cannot_be_linked_across_days(
    start_collector: Any, conn: asyncpg.Connection
) -> None:
    collector = start_collector()  # default: sid stored as a per-day pseudonym
    sid = make_beacon()["sid"]
    now = time.time() * 1000
    today, later, yesterday = (make_beacon(sid=sid, t0=t0)
                               for t0 in (now - 60_000, now - 30_000, now - 86_400_000))
    for beacon in (today, later, yesterday):
        assert post(collector.url, beacon).status_code == 204
    rows = {}
    for beacon in (today, later, yesterday):
        [row] = await stored(conn, beacon["pv"])
        rows[beacon["pv"]] = row
    stored_today, stored_later, stored_yesterday = (
        rows[b["pv"]]["sid"] for b in (today, later, yesterday))
    assert stored_today == stored_later  # one session within the day
    assert stored_yesterday != stored_today  # nothing links the two days
    assert sid not in {stored_today, stored_yesterday}  # the tab's id is never stored


async def test_the_collector_runs_as_a_least_privileged_role(
    start_collector: Any, conn: asyncpg.Connection, database_url: str
) -> None:
    """BINOME_DATABASE_URL as a role that can only write beacons and counters;
    `binome serve` migrates with BINOME_MIGRATION_DATABASE_URL (the owner).
    The grants are what the collector needs (SECURITY.md lists them)."""
    role = "binome_test_writer_" + secrets.token_hex(4)
    name = urlsplit(database_url).path.lstrip("/")
    writer_url = await create_login(conn, database_url, role)
    try:
        if await conn.fetchval(
            "SELECT to_regrole('binome_writer') IS NOT NULL"
            " AND has_table_privilege('binome_writer', 'binome.beacons', 'INSERT')"
        ):  # the migrations' own least-privileged role
            await conn.execute(f"GRANT binome_writer TO {role}")
        else:
            await conn.execute(f"""
                GRANT USAGE ON SCHEMA binome TO {role};
                GRANT SELECT ON binome.sites, binome.site_origins TO {role};
                GRANT SELECT, INSERT ON binome.beacons TO {role};  -- SELECT: LIKE for staging
                GRANT INSERT ON binome.dead_letters TO {role};
                GRANT SELECT, INSERT, UPDATE ON binome.ingest_counts TO {role};
            """)
        await conn.execute(f"""
            GRANT CONNECT, TEMP ON DATABASE "{name}" TO {role};
            SELECT binome.ensure_beacon_partition(current_date);
            SELECT binome.ensure_beacon_partition(current_date + 1);
        """)
        collector = start_collector(database_url=writer_url,
                                    migration_database_url=database_url)
        beacon = make_beacon()
        assert post(collector.url, beacon).status_code == 204
        assert httpx.get(collector.url + "/readyz").status_code == 200
        await stored(conn, beacon["pv"])
        writer = await asyncpg.connect(writer_url)
        try:
            for forbidden in ("DELETE FROM binome.beacons", "UPDATE binome.sites SET site = site",
                              "TRUNCATE binome.ingest_counts", "SELECT * FROM binome.dead_letters",
                              "DROP TABLE binome.sites"):
                try:
                    await writer.execute(forbidden)
                except asyncpg.InsufficientPrivilegeError:
                    continue
                raise AssertionError(f"{role} may {forbidden}")
        finally:
            await writer.close()
        collector.stop()
    finally:
        await conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")


async def test_control_characters_never_reach_the_database(
    live_server: str, conn: asyncpg.Connection
) -> None:
    """Terminal escapes in every free string of a beacon (issue 20): C0 and C1
    controls are gone from what is stored; the rest of the text stays."""
    title, csi, c1 = "\x1b]0;pwned\x07", "\x1b[31m", "\x9b31m\x85"
    hostile = f"{title}[link=https://evil.example]x[/link]{csi}{c1}"
    beacon = make_beacon(
        url="https://shop.example/p/\x1b[31m42\x9b?utm_campaign=" + quote(hostile)
            + "&utm_source=" + quote(csi + "news"),
        release=csi + "r1" + c1,
        dims={"page_type": title + "product", "ab_variant": csi + "B"},
        nav={"type": "navigate", "protocol": csi + "h2"},
        metrics=[{"name": "LCP", "value": 2140.5, "id": title + "v5-1",
                  "attribution": {csi + "target": hostile, "url": "https://cdn.example/"
                                  + csi + "hero.jpg?sig=1"}}],
        events=[{"name": title + "purchase", "value": 1.0, "currency": "EUR"}])
    assert post(live_server, beacon).status_code == 204
    [row] = await stored(conn, beacon["pv"])
    dump = json.dumps([str(value) for value in row.values()])
    for control in ("\\u001b", "\\u0007", "\\u009b", "\\u0085"):
        assert control not in dump, control
    assert row["path"] == "/p/[31m42"
    assert row["utm_campaign"] == "]0;pwned[link=https://evil.example]x[/link][31m31m"
    assert (row["utm_source"], row["release"]) == ("[31mnews", "[31mr131m")
    assert json.loads(row["dims"]) == {"page_type": "]0;pwnedproduct", "ab_variant": "[31mB"}
    assert json.loads(row["events"])[0]["name"] == "]0;pwnedpurchase"
    assert json.loads(row["nav"])["protocol"] == "[31mh2"
    [metric] = json.loads(row["metrics"])
    assert metric["attribution"] == {
        "[31mtarget": "]0;pwned[link=https://evil.example]x[/link][31m31m",
        "url": "https://cdn.example/[31mhero.jpg"}
