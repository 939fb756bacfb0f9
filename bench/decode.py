"""What the msgspec mirror of the beacon saves per beacon over pydantic (issue 19).

    .venv/bin/python bench/decode.py [--repeats 7] [--number 20000]

For two valid beacons (the full marketing example of the beacon's spec, and a
typical performance-consent beacon: URL, device, navigation, three metrics),
times per beacon, in microseconds:

  * decode: raw body -> validated object, with `collector.beacon.parse_beacon`
    (pydantic, from JSON in one pass) and `collector.beacon_decoder.parse`
    (the msgspec mirror);
  * row:    decode, then `collector.enrich.to_record` on the object: the whole
    cost that differs between the two, since enrichment reads either object
    (its caches warm, as on a live collector).

Each figure is the median of --repeats runs of --number calls; the last column
is pydantic minus the mirror. Issue 19's rule: under 5 µs saved a beacon, the
mirror goes. Runs without the mirror too (after its removal), printing pydantic's
figures alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.beacon import parse_beacon  # noqa: E402
from collector.enrich import to_record  # noqa: E402

try:
    from collector.beacon_decoder import parse as parse_mirror  # type: ignore[import-not-found]
except ImportError:  # the mirror was removed
    parse_mirror = None

MARKETING = {
    "v": 1, "consent": "marketing", "site": "demo", "pv": "q3Zk9f0aT1xw2bYc", "seq": 0,
    "t0": 1764150000000.5, "sid": "Hc8s0d9f8g7h6j5k",
    "url": "https://shop.example/p/42?utm_source=newsletter&utm_medium=email"
           "&utm_campaign=black-friday",
    "ref": "https://www.google.com/", "release": "2026.11.3",
    "dims": {"page_type": "product", "ab_variant": "B"},
    "device": {"vw": 390, "vh": 844, "dpr": 3, "mem": 4, "cpus": 8, "ect": "4g", "rtt": 50,
               "downlink": 10, "save_data": False},
    "nav": {"type": "navigate", "dns": 12, "connect": 30, "tls": 18, "ttfb": 210,
            "dom_interactive": 900, "dcl": 950, "load": 1400, "transfer_size": 48213,
            "protocol": "h2"},
    "metrics": [
        {"name": "LCP", "value": 2140.5, "id": "v5-1764150000000-1234", "delta": 2140.5,
         "rating": "good", "navigationType": "navigate", "attribution": {"target": "img.hero"}},
        {"name": "CLS", "value": 0.04, "id": "v5-1764150000000-5678", "delta": 0.04},
    ],
    "events": [{"name": "purchase", "value": 49.9, "currency": "EUR"}],
}
PERFORMANCE = {
    "v": 1, "consent": "performance", "site": "demo", "pv": "Zr8kQ2mW4nX7pL1s", "seq": 1,
    "t0": 1764150000000.5, "url": "https://shop.example/category/shoes",
    "dims": {"page_type": "category"},
    "device": {"vw": 1440, "vh": 900, "dpr": 2, "mem": 8, "cpus": 8, "ect": "4g", "rtt": 100,
               "downlink": 10},
    "nav": {"type": "navigate", "dns": 0, "connect": 0, "tls": 0, "ttfb": 180,
            "dom_interactive": 700, "dcl": 720, "load": 1100, "transfer_size": 30211,
            "protocol": "h2"},
    "metrics": [
        {"name": "LCP", "value": 1210.2, "id": "v5-1764150000000-1", "delta": 1210.2,
         "rating": "good", "navigationType": "navigate"},
        {"name": "FCP", "value": 690.0, "id": "v5-1764150000000-2", "delta": 690.0,
         "rating": "good", "navigationType": "navigate"},
        {"name": "TTFB", "value": 180.0, "id": "v5-1764150000000-3", "delta": 180.0,
         "rating": "good", "navigationType": "navigate"},
    ],
}
USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
              " Chrome/131.0.0.0 Safari/537.36")
RECEIVED_AT = dt.datetime(2025, 11, 26, 10, 0, tzinfo=dt.UTC)


def per_call_us(function: Callable[[], object], number: int, repeats: int) -> float:
    """Median over `repeats` runs of the time of one call, in microseconds."""
    runs = timeit.repeat(function, number=number, repeat=repeats)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args()

    print(f"{'beacon':<12} {'step':<7} {'pydantic':>9} {'mirror':>9} {'saved':>9}  (µs a beacon)")
    for name, beacon in (("marketing", MARKETING), ("performance", PERFORMANCE)):
        body = orjson.dumps(beacon)
        steps: dict[str, dict[str, Callable[[], object]]] = {
            "decode": {"pydantic": lambda b=body: parse_beacon(b)},
            "row": {"pydantic": lambda b=body: to_record(parse_beacon(b), RECEIVED_AT,
                                                         USER_AGENT, "FR")},
        }
        if parse_mirror is not None:
            mirror = parse_mirror
            steps["decode"]["mirror"] = lambda b=body: mirror(b)
            steps["row"]["mirror"] = lambda b=body: to_record(mirror(b), RECEIVED_AT,
                                                              USER_AGENT, "FR")
        for step, functions in steps.items():
            times = {who: per_call_us(f, args.number, args.repeats)
                     for who, f in functions.items()}
            if "mirror" in times:
                saved = times["pydantic"] - times["mirror"]
                print(f"{name:<12} {step:<7} {times['pydantic']:>9.2f} {times['mirror']:>9.2f}"
                      f" {saved:>9.2f}")
            else:
                print(f"{name:<12} {step:<7} {times['pydantic']:>9.2f} {'-':>9} {'-':>9}")


if __name__ == "__main__":
    main()
