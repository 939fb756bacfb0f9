"""Enrichment (collector/enrich.py): a beacon becomes a row, as consent allows.

Pure unit tests, no database. The privacy rules of docs/beacon-format.md ("The
beacon", "Consent") each have a test that fails if a query value, fragment,
referrer path or marketing field reaches the row.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import string
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.beacon_decoder import Beacon
from collector.beacon_decoder import parse as parse_beacon
from collector.enrich import session_pseudonym, to_record
from collector.row import COLUMNS
from collector.scrub import scrub_text
from collector.session_keys import SessionKeys
from tests.conftest import make_beacon
from tests.test_useragents import UA

UTC = dt.UTC
# 2025-11-26T09:40:00.500Z, the contract's example t0.
T0 = 1764150000000.5
RECEIVED = dt.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)
KEYS = SessionKeys()  # day keys of this process only: no database here


def _beacon(**overrides: Any) -> Beacon:
    """The contract's example beacon (section 5), validated the way ingest validates it."""
    body = make_beacon(pv="q3Zk9f0aT1xw2bYc", t0=T0, sid="Hc8s0d9f8g7h6j5k")
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return parse_beacon(orjson.dumps(body))


def _row(beacon: Beacon, user_agent: str = UA["iphone_safari"],
         country: str | None = "FR") -> dict[str, Any]:
    record = to_record(beacon, RECEIVED, user_agent, country, session_keys=KEYS)
    assert len(record) == len(COLUMNS)
    return dict(zip(COLUMNS, record, strict=True))


def _row_text(row: dict[str, Any]) -> str:
    """Every value of a row as one string, JSON columns decoded, to search for leaks."""
    parts = []
    for value in row.values():
        parts.append(str(value))
        if isinstance(value, str) and value[:1] in "[{":
            parts.append(str(orjson.loads(value)))
    return "\n".join(parts)


# --- to_record --------------------------------------------------------------------------


def test_to_record_marketing_keeps_everything() -> None:
    row = _row(_beacon())
    assert row["site"] == "demo"
    assert row["day"] == dt.date(2025, 11, 26)
    assert row["pv"] == "q3Zk9f0aT1xw2bYc"
    assert row["seq"] == 0
    assert row["sid"] == session_pseudonym(KEYS.key(dt.date(2025, 11, 26)), "demo",
                                           dt.date(2025, 11, 26), "Hc8s0d9f8g7h6j5k")
    assert row["received_at"] is RECEIVED
    assert row["t0"] == dt.datetime(2025, 11, 26, 9, 40, 0, 500, tzinfo=UTC)
    assert row["t0"].tzinfo is not None
    assert row["consent"] == "marketing"
    assert row["path"] == "/p/42"
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "newsletter", "email", "black-friday")
    assert row["utm_term"] is None and row["utm_content"] is None
    assert row["ref_origin"] == "https://www.google.com"
    assert row["channel"] == "email"  # utm_medium=email beats the google referrer
    assert row["release"] == "2026.11.3"
    assert orjson.loads(row["dims"]) == {"page_type": "product", "ab_variant": "B"}
    assert (row["device_class"], row["browser"], row["os"]) == ("mobile", "Mobile Safari", "iOS")
    assert row["country"] == "FR"
    assert orjson.loads(row["device"]) == {"vw": 390, "vh": 844, "dpr": 3, "mem": 4, "cpus": 8,
                                           "ect": "4g", "rtt": 50, "downlink": 10,
                                           "save_data": False}
    assert orjson.loads(row["nav"])["transfer_size"] == 48213
    assert (row["lcp"], row["inp"], row["cls"], row["fcp"], row["ttfb"]) == (
        2140.5, None, 0.04, None, None)
    assert orjson.loads(row["metrics"]) == [
        {"name": "LCP", "value": 2140.5, "id": "v5-1764150000000-1234", "delta": 2140.5,
         "rating": "good", "navigationType": "navigate", "attribution": {"target": "img.hero"}},
        {"name": "CLS", "value": 0.04, "id": "v5-1764150000000-5678", "delta": 0.04},
    ]
    assert orjson.loads(row["events"]) == [{"name": "purchase", "value": 49.9, "currency": "EUR"}]
    assert row["event_count"] == 1
    assert row["revenue"] == Decimal("49.9")


def test_to_record_json_columns_are_json_text() -> None:
    # asyncpg COPYs str into jsonb; a dict or list would need a codec the writer lacks.
    row = _row(_beacon())
    for column in ("dims", "device", "nav", "metrics", "events"):
        assert isinstance(row[column], str), column
        orjson.loads(row[column])


def test_to_record_performance_strips_everything_marketing() -> None:
    beacon = _beacon(
        consent="performance",
        url="https://shop.example/p/42?utm_source=newsletter&utm_medium=cpc"
            "&utm_campaign=black-friday&utm_term=t&utm_content=c&gclid=G1&fbclid=F1",
        ref="https://www.facebook.com/some/post",
        dims={"page_type": "product", "ab_variant": "B", "segment": "vip"},
        events=[{"name": "purchase", "value": 49.9, "currency": "EUR"}, {"name": "signup"}],
    )
    row = _row(beacon)
    assert row["consent"] == "performance"
    for column in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                   "ref_origin", "channel", "events", "revenue"):
        assert row[column] is None, column
    assert row["event_count"] == 0
    assert orjson.loads(row["dims"]) == {"page_type": "product"}
    text = _row_text(row)
    for leaked in ("newsletter", "black-friday", "facebook", "ab_variant", "vip", "purchase",
                   "signup", "49.9", "G1", "F1"):
        assert leaked not in text, leaked
    # what performance measurement needs is still there
    assert row["path"] == "/p/42"
    assert row["release"] == "2026.11.3"
    assert row["lcp"] == 2140.5
    assert row["device_class"] == "mobile"
    assert row["device"] is not None and row["nav"] is not None and row["metrics"] is not None


@pytest.mark.parametrize(
    ("dims", "expected"),
    [
        ({"ab_variant": "B"}, None),
        ({}, None),
        ({"page_type": "home"}, {"page_type": "home"}),
    ],
)
def test_to_record_performance_dims(dims: dict[str, str],
                                    expected: dict[str, str] | None) -> None:
    row = _row(_beacon(consent="performance", dims=dims))
    assert (orjson.loads(row["dims"]) if row["dims"] is not None else None) == expected


def test_to_record_consent_absent_means_performance() -> None:
    """Private by default (contract section 5, issue 24): a beacon that does not
    say it has marketing consent keeps nothing of its marketing fields."""
    row = _row(_beacon(consent=None))
    assert row["consent"] == "performance"
    assert row["utm_source"] is None and row["utm_campaign"] is None
    assert row["ref_origin"] is None and row["channel"] is None
    assert orjson.loads(row["dims"]) == {"page_type": "product"}
    assert row["event_count"] == 0 and row["revenue"] is None


def test_to_record_never_stores_query_or_fragment_secrets() -> None:
    beacon = _beacon(
        url="https://shop.example/reset?token=abc123tok&email=jane.doe%40mail.fr"
            "&utm_source=mailer#access_token=frag456tok",
        ref="https://partner.example/inbox?email=jane.doe@mail.fr&sid=refsecret789",
    )
    row = _row(beacon)
    assert row["path"] == "/reset"
    assert row["utm_source"] == "mailer"
    assert row["ref_origin"] == "https://partner.example"
    text = _row_text(row)
    for secret in ("abc123tok", "jane.doe", "mail.fr", "frag456tok", "access_token", "token=",
                   "refsecret789", "inbox"):
        assert secret not in text, secret


def test_to_record_click_ids_pick_the_channel_and_are_dropped() -> None:
    row = _row(_beacon(url="https://shop.example/p?gclid=Cj0KCQclickid", ref=None))
    assert row["channel"] == "paid"
    assert "Cj0KCQclickid" not in _row_text(row)


def test_to_record_metric_attribution_urls_lose_their_query() -> None:
    metric = {"name": "LCP", "value": 1200.0, "attribution": {
        "url": "https://cdn.example/hero.jpg?sig=signedsecret#x", "target": "img.hero"}}
    row = _row(_beacon(metrics=[metric]))
    assert orjson.loads(row["metrics"])[0]["attribution"] == {
        "url": "https://cdn.example/hero.jpg", "target": "img.hero"}


@pytest.mark.parametrize("consent", ["performance", "marketing"])
def test_to_record_scrubs_every_string_the_client_sends(consent: str) -> None:
    """Personal data in any free string of a beacon, attribution included, is
    scrubbed at both consent levels (issue 20)."""
    email, phone = "jean.dupont+news@gmail.com", "06 12 34 56 78"
    row = _row(_beacon(
        consent=consent,
        url=f"https://shop.example/u/{email}?utm_campaign=rappel-{quote(phone)}",
        release=f"build {email}",
        dims={"page_type": f"account-{phone}", "owner": email},
        nav={"type": "navigate", "protocol": "h2"},
        metrics=[{"name": "INP", "value": 80.0, "id": f"id {email}", "attribution": {
            "interactionTarget": "#user-jean.dupont@example.fr>img.avatar",
            "url": f"https://shop.example/u/{email}?x=1", f"by {email}": "184127645108946",
            "loadState": "complete", "interactionTargetElement": None}}],
        events=[{"name": f"callback {phone}", "value": 1.0}]))
    text = _row_text(row)
    for secret in ("jean.dupont", "gmail", "06 12", "12 34", "1841276451"):
        assert secret not in text, secret
    assert row["path"] == "/u/:email"
    assert row["release"] == "build :email"
    assert orjson.loads(row["dims"])["page_type"] == "account-:phone"
    [metric] = orjson.loads(row["metrics"])
    assert metric["id"] == "id :email"
    assert metric["attribution"] == {
        "interactionTarget": "#:email>img.avatar", "url": "https://shop.example/u/:email",
        "by :email": ":nir", "loadState": "complete", "interactionTargetElement": None}
    if consent == "marketing":
        assert row["utm_campaign"] == "rappel-:phone"
        assert orjson.loads(row["dims"])["owner"] == ":email"
        assert orjson.loads(row["events"]) == [{"name": "callback :phone", "value": 1.0}]


@pytest.mark.parametrize("release", [
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "9f86d08", "2026.11.3+9f86d08", "1.2.3.4",
    "build-20261103", "e2e-243463b6", "v2.3.1-rc.1"])
def test_to_record_keeps_build_labels_as_releases(release: str) -> None:
    """A release names a build: commit hashes, build numbers and versions stay
    (scrub_label), so that releases can be compared."""
    assert _row(_beacon(release=release))["release"] == release


def test_to_record_keeps_web_vitals_metric_ids_and_plain_attribution() -> None:
    row = _row(_beacon())
    assert [m["id"] for m in orjson.loads(row["metrics"])] == [
        "v5-1764150000000-1234", "v5-1764150000000-5678"]
    assert orjson.loads(row["metrics"])[0]["attribution"] == {"target": "img.hero"}


def test_to_record_last_report_of_a_metric_wins() -> None:
    metrics = [
        {"name": "LCP", "value": 1000.0}, {"name": "INP", "value": 80.0},
        {"name": "LCP", "value": 2500.0}, {"name": "FCP", "value": 900.0},
        {"name": "TTFB", "value": 210.0}, {"name": "CLS", "value": 0.0},
    ]
    row = _row(_beacon(metrics=metrics))
    assert (row["lcp"], row["inp"], row["cls"], row["fcp"], row["ttfb"]) == (
        2500.0, 80.0, 0.0, 900.0, 210.0)
    assert len(orjson.loads(row["metrics"])) == 6


@pytest.mark.parametrize(
    ("events", "count", "revenue"),
    [
        ([], 0, None),
        ([{"name": "signup"}], 1, None),
        ([{"name": "purchase", "value": 49.9}, {"name": "purchase", "value": 10.1},
          {"name": "signup"}], 3, Decimal("60.0")),
        ([{"name": "free", "value": 0}], 1, Decimal(0)),
    ],
)
def test_to_record_events_and_revenue(events: list[dict[str, Any]], count: int,
                                      revenue: Decimal | None) -> None:
    row = _row(_beacon(events=events))
    assert row["event_count"] == count
    assert row["revenue"] == revenue
    assert (row["events"] is None) == (count == 0)


def test_to_record_optional_fields_absent() -> None:
    row = _row(_beacon(t0=None, sid=None, ref=None, release=None, dims={}, device=None,
                       nav=None, metrics=[], events=[]), user_agent="", country=None)
    assert row["t0"] is None and row["sid"] is None
    assert row["day"] == dt.date(2025, 11, 26)
    for column in ("release", "dims", "device", "nav", "metrics", "events", "ref_origin",
                   "lcp", "revenue", "country", "browser", "os"):
        assert row[column] is None, column
    assert row["device_class"] == "unknown"
    assert row["channel"] == "email"  # utm_medium=email still classifies without a referrer


def test_to_record_empty_device_is_null() -> None:
    row = _row(_beacon(device={}, nav={}))
    assert row["device"] is None and row["nav"] is None


# --- property: no non-utm query value survives ------------------------------------------

_KEYS = st.text(alphabet=string.ascii_letters + string.digits + "_-.[]", min_size=1,
                max_size=12).filter(lambda key: not key.lower().startswith("utm_"))
_VALUES = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
                  min_size=1, max_size=16)
# Prefixed so a value cannot match text the row legitimately holds ("e", "/p").
_MARK = "Qz7"


@settings(max_examples=300, deadline=None)
@given(
    params=st.lists(st.tuples(_KEYS, _VALUES), min_size=1, max_size=6),
    fragment=st.one_of(st.none(), _VALUES),
    utm_campaign=st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1,
                         max_size=20).filter(lambda campaign: _MARK not in campaign),
)
def test_no_query_value_but_utm_reaches_the_record(
    params: list[tuple[str, str]], fragment: str | None, utm_campaign: str
) -> None:
    pairs = [f"{quote(key, safe='')}={quote(_MARK + value, safe='')}" for key, value in params]
    pairs.insert(len(pairs) // 2, f"utm_campaign={utm_campaign}")
    url = "https://shop.example/p/42?" + "&".join(pairs)
    if fragment is not None:
        url += "#" + quote(_MARK + "frag" + fragment, safe="=&")
    row = _row(_beacon(url=url, ref=url))
    assert row["utm_campaign"] == scrub_text(utm_campaign)
    assert row["path"] == "/p/42"
    # Every value and the fragment carry the marker, encoded or decoded alike.
    assert _MARK not in _row_text(row)


def test_personal_data_is_scrubbed_from_path_utm_and_dims() -> None:
    beacon = _beacon(
        url="https://shop.example/account/jean.dupont%40example.fr/orders/100234567"
            "?utm_source=crm&utm_content=contact-00123456&utm_term=jane%40doe.example"
            "&utm_campaign=spring-2026",
        dims={"page_type": "account", "customer": "cus_9f86d081884c7d659a2f"},
        metrics=[{"name": "LCP", "value": 900, "attribution": {
            "url": "https://cdn.example/u/9f86d081884c7d659a2feaa0c55ad015/avatar.png?sig=x"}}],
    )
    row = _row(beacon)
    assert row["path"] == "/account/:email/orders/:id"
    assert row["utm_content"] == "contact-:id"
    assert row["utm_term"] == ":email"
    assert row["utm_campaign"] == "spring-2026" and row["utm_source"] == "crm"
    assert orjson.loads(row["dims"]) == {"page_type": "account", "customer": ":token"}
    assert orjson.loads(row["metrics"])[0]["attribution"]["url"] == (
        "https://cdn.example/u/:token/avatar.png")
    text = _row_text(row)
    for secret in ("jean.dupont", "100234567", "00123456", "jane", "9f86d0818"):
        assert secret not in text, secret


# --- session ids that cannot be linked across days --------------------------------------

def test_session_pseudonym_changes_with_the_day_and_site() -> None:
    day = dt.date(2025, 11, 26)
    sid = "Hc8s0d9f8g7h6j5k"
    key = secrets.token_bytes(32)
    same = session_pseudonym(key, "demo", day, sid)
    assert same == session_pseudonym(key, "demo", day, sid)
    assert same != sid and len(same) == 16 and set(same) <= set(
        string.ascii_letters + string.digits + "-_")
    assert session_pseudonym(key, "demo", day + dt.timedelta(days=1), sid) != same
    assert session_pseudonym(key, "other", day, sid) != same


def test_session_pseudonym_is_keyed() -> None:
    """Without the day's key, the session id (readable by any script on the page)
    does not give the stored value (issue 20): not the former unkeyed hash, and
    another key gives another value."""
    day, sid = dt.date(2025, 11, 26), "Hc8s0d9f8g7h6j5k"
    key = secrets.token_bytes(32)
    unkeyed = base64.urlsafe_b64encode(hashlib.blake2b(
        f"demo\x00{day.isoformat()}\x00{sid}".encode(), digest_size=12,
        person=b"binome.sid.v1").digest()).decode()
    pseudonym = session_pseudonym(key, "demo", day, sid)
    assert pseudonym != unkeyed
    assert pseudonym != session_pseudonym(secrets.token_bytes(32), "demo", day, sid)
    assert pseudonym == base64.urlsafe_b64encode(hmac.new(
        key, f"demo\x00{day.isoformat()}\x00{sid}".encode(), hashlib.sha256).digest()[:12]
    ).decode()


def test_a_sessions_page_views_share_the_pseudonym_of_their_day() -> None:
    first = _row(_beacon(pv="pvfirst01", t0=T0))
    later = _row(_beacon(pv="pvlater01", t0=T0 + 3_600_000))
    yesterday = _row(_beacon(pv="pvyesterd", t0=T0 - 86_400_000))
    assert first["sid"] == later["sid"]
    assert yesterday["day"] == dt.date(2025, 11, 25) and yesterday["sid"] != first["sid"]


def test_session_ids_as_sent_when_asked() -> None:
    record = to_record(_beacon(), RECEIVED, UA["iphone_safari"], None, session_per_day=False)
    assert dict(zip(COLUMNS, record, strict=True))["sid"] == "Hc8s0d9f8g7h6j5k"

