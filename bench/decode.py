"""What the msgspec decoder of the beacon saves per beacon over pydantic (issue 19).

    .venv/bin/python bench/decode.py [--repeats 21] [--number 3000]

For two valid beacons (the full marketing example of the beacon's spec, and a
typical performance-consent beacon: URL, device, navigation, three metrics),
times per beacon, in microseconds:

  * decode: raw body -> validated object, with `collector.beacon.parse_beacon`
    (pydantic, from JSON in one pass) and `collector.beacon_decoder.parse`
    (the Structs generated from the model);
  * row:    the decoder's object, then `collector.enrich.to_record` (its caches
    warm, as on a live collector).

Each figure is the median of --repeats runs of --number calls, the two
decoders taking turns; "saved" is the median of the runs' differences. Issue
19's rule: under 5 µs saved a beacon, the decoder goes.
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

from collector.beacon_decoder import parse as parse_decoder  # noqa: E402

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


def per_call_us(functions: dict[str, Callable[[], object]], number: int,
                repeats: int) -> dict[str, float]:
    """Median time of one call of each function, in microseconds, and of the
    difference pydantic - decoder ("saved"). The functions take turns within each
    repeat, so a burst of load on the machine weighs on both alike."""
    runs: dict[str, list[float]] = {who: [] for who in functions}
    for _ in range(repeats):
        for who, function in functions.items():
            runs[who].append(timeit.timeit(function, number=number) / number * 1e6)
    times = {who: statistics.median(values) for who, values in runs.items()}
    if len(runs) == 2:
        times["saved"] = statistics.median(
            slow - fast for slow, fast in zip(runs["pydantic"], runs["decoder"], strict=True))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--number", type=int, default=3000)
    args = parser.parse_args()

    print(f"{'beacon':<12} {'step':<7} {'pydantic':>9} {'decoder':>9} {'saved':>9}  (µs a beacon)")
    for name, beacon in (("marketing", MARKETING), ("performance", PERFORMANCE)):
        body = orjson.dumps(beacon)
        steps: dict[str, dict[str, Callable[[], object]]] = {
            "decode": {"pydantic": lambda b=body: parse_beacon(b),
                       "decoder": lambda b=body: parse_decoder(b)},
            "row": {"decoder": lambda b=body: to_record(parse_decoder(b), RECEIVED_AT,
                                                        USER_AGENT, "FR")},
        }
        for step, functions in steps.items():
            times = per_call_us(functions, args.number, args.repeats)
            cells = [f"{times[who]:>9.2f}" if who in times else f"{'-':>9}"
                     for who in ("pydantic", "decoder", "saved")]
            print(f"{name:<12} {step:<7} {' '.join(cells)}")


if __name__ == "__main__":
    main()
