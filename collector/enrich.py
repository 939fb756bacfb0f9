"""Enrichment: a validated beacon becomes one row of binome.beacons (row.COLUMNS).

The page URL keeps its path and utm_* values (collector/scrub.py), the referrer
its origin and a channel (collector/channels.py), the user agent a device class,
browser and OS (collector/useragents.py). At the `performance` consent level
nothing that measures campaigns, acquisition, cohorts or conversions survives
(docs/beacon-format.md, "Consent"; CNIL guidance of 4 July 2025).

A beacon comes as the msgspec Struct of collector/beacon_decoder.py, whose
JSON columns msgspec serialises in one call each.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
import orjson

from collector.beacon_decoder import Beacon
from collector.channels import classify
from collector.row import Record, page_view_day
from collector.scrub import scrub_label, scrub_text, split_url
from collector.session_keys import SessionKeys
from collector.useragents import parse_user_agent

# web-vitals' metric id: v<version>-<page load time in ms>-<random number>. Unique
# per metric report, so scrub_text's cache would only be churned by it, and it
# holds nothing of the visitor's: kept as sent; any other id is scrubbed.
_WEB_VITALS_ID = re.compile(r"v[0-9]{1,2}-[0-9]{1,16}-[0-9]{1,16}")


def session_pseudonym(key: bytes, site: str, day: dt.date, sid: str) -> str:
    """The `sid` stored for a page view of `day`: HMAC-SHA256 of the site, the day
    and the snippet's session id under the day's key (collector/session_keys.py),
    so one visitor's sessions on two days share no identifier, and a session id
    read from the page gives nothing without the key.

    The result has the form of a sid (16 of [A-Za-z0-9_-]: 96 bits).
    """
    digest = hmac.new(key, f"{site}\x00{day.isoformat()}\x00{sid}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode()


# Keys local to this process, for callers that pass none (tests, benches);
# `binome serve` passes the keys it shares through PostgreSQL (collector/ingest.py).
_LOCAL_SESSION_KEYS = SessionKeys()


def to_record(
    beacon: Beacon, received_at: dt.datetime, user_agent: str,
    country: str | None, *, session_per_day: bool = True,
    session_keys: SessionKeys = _LOCAL_SESSION_KEYS,
) -> Record:
    """One row of binome.beacons, in COLUMNS order.

    JSON columns are returned as JSON text: the writer COPYs into jsonb without
    registering a codec. With `session_per_day`, `sid` is stored as its
    session_pseudonym for the page view's day, under that day's key in
    `session_keys`.
    """
    page_host, path, utm, click_ids = split_url(beacon.url)
    device_class, browser, os = parse_user_agent(user_agent)
    # ua-parser's families may quote the User-Agent (a client's text) as it is.
    browser = None if browser is None else scrub_text(browser)
    os = None if os is None else scrub_text(os)
    day = page_view_day(beacon.t0, received_at)
    sid = beacon.sid
    if sid is not None and session_per_day:
        sid = session_pseudonym(session_keys.key(day), beacon.site, day, sid)

    if beacon.consent == "marketing":
        ref_origin, channel = classify(beacon.ref, page_host, utm, click_ids)
        dims = {scrub_text(key): scrub_text(value)
                for key, value in beacon.dims.items()} or None
        events = beacon.events
    else:
        # docs/beacon-format.md, "Consent": at `performance` only what measures the site's own
        # performance survives, whatever the beacon carries.
        utm = {}
        ref_origin = channel = None
        page_type = beacon.dims.get("page_type")
        dims = {"page_type": scrub_text(page_type)} if page_type is not None else None
        events = []

    values = [event.value for event in events if event.value is not None]
    # Decimal from the float's shortest repr: 49.9 + 10.1 sums to 60.0, not 60.00000000000001.
    revenue = sum((Decimal(repr(value)) for value in values), Decimal(0)) if values else None

    # Later reports of a metric supersede earlier ones (web-vitals reports again
    # as LCP and CLS grow), so the last one in the beacon is its value here.
    metric_values = {metric.name: metric.value for metric in beacon.metrics}

    return (
        beacon.site,
        day,
        beacon.pv,
        beacon.seq,
        sid,
        received_at,
        None if beacon.t0 is None else dt.datetime.fromtimestamp(beacon.t0 / 1000, dt.UTC),
        beacon.consent,
        path,
        utm.get("utm_source"),
        utm.get("utm_medium"),
        utm.get("utm_campaign"),
        utm.get("utm_term"),
        utm.get("utm_content"),
        ref_origin,
        channel,
        None if beacon.release is None else scrub_label(beacon.release),
        _json(dims),
        device_class,
        browser,
        os,
        country,
        _part_json(beacon.device) if beacon.device else None,
        _nav_json(beacon.nav) if beacon.nav else None,
        metric_values.get("LCP"),
        metric_values.get("INP"),
        metric_values.get("CLS"),
        metric_values.get("FCP"),
        metric_values.get("TTFB"),
        _metrics_json(beacon.metrics) if beacon.metrics else None,
        _json([_event_dump(event) for event in events]) if events else None,
        len(events),
        revenue,
        _part_json(beacon.lost) if beacon.lost else None,
    )


def _fields(part: msgspec.Struct) -> dict[str, Any]:
    """A validated part's set fields (None values inside a dict field stay)."""
    return {name: value for name in part.__struct_fields__
            if (value := getattr(part, name)) is not None}


def _part_json(part: msgspec.Struct) -> str | None:
    """A device or navigation part's set fields as JSON text; None when none is set."""
    text = msgspec.json.encode(part).decode()  # omit_defaults: the None fields are left out
    return None if text == "{}" else text


def _nav_json(nav: msgspec.Struct) -> str | None:
    """_part_json of the navigation part, its one free string (protocol) scrubbed."""
    protocol = getattr(nav, "protocol", None)
    if protocol is not None and scrub_text(protocol) != protocol:
        nav = msgspec.structs.replace(nav, protocol=scrub_text(protocol) or None)
    return _part_json(nav)


def _event_dump(event: msgspec.Struct) -> dict[str, Any]:
    dump = _fields(event)
    dump["name"] = scrub_text(dump["name"])
    return dump


def _metrics_json(metrics: Sequence[Any]) -> str:
    """The metrics as JSON text, every string in them scrubbed (scrub_text): the
    id and the attribution's keys and values. web-vitals attribution names
    resources by URL (LCP's `url`, an element's selector): a signed CDN URL
    carries its token in the query, which is no more stored here than the page's
    own. In one msgspec call when there is nothing to scrub (no attribution,
    web-vitals' own ids)."""
    if all(_nothing_to_scrub(metric) for metric in metrics):
        return msgspec.json.encode(metrics).decode()
    return orjson.dumps([_metric_dump(metric) for metric in metrics]).decode()


def _nothing_to_scrub(metric: Any) -> bool:
    if metric.id is not None and not _WEB_VITALS_ID.fullmatch(metric.id):
        return False
    return not metric.attribution or all(
        scrub_text(key) == key and (not isinstance(value, str) or (
            _attribution_value(value) == value)) for key, value in metric.attribution.items())


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value[:4].lower() == "http"


def _metric_dump(metric: Any) -> dict[str, Any]:
    dump = _fields(metric)
    if "id" in dump and not _WEB_VITALS_ID.fullmatch(dump["id"]):
        dump["id"] = scrub_text(dump["id"])
    attribution = dump.get("attribution")
    if attribution:
        dump["attribution"] = {
            scrub_text(key): _attribution_value(value) for key, value in attribution.items()}
    return dump


def _attribution_value(value: object) -> object:
    if not isinstance(value, str):
        return value
    if _is_url(value):
        value = value.partition("#")[0].partition("?")[0]
    return scrub_text(value)


def _json(value: Any) -> str | None:
    """JSON text for a jsonb column; None (SQL NULL) for nothing to store."""
    return None if value is None else orjson.dumps(value).decode()
