"""`binome report`'s proof of gains (issue 21): each release, A/B variant and
week difference of rum.comparisons written "−340 ms (−420 to −260)" with its
verdict in words, and rum.speed_worth, "what speed is worth", with its caveat.
The figures, intervals and verdicts are the views'; only their writing is here
(the dashboard writes them the same way, dashboard/src/proof.js)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from collector.indicators import THRESHOLDS, TOO_SMALL
from collector.proof import KINDS, METRICS, needed
from collector.report_layout import BREAK, Row, fit
from collector.scrub import strip_controls

_HEADERS = {"lcp_p75": "LCP p75", "inp_p75": "INP p75", "cls_p75": "CLS p75",
            "cwv_good_pct": "good CWV", "conversion_rate": "conversion"}
_VERDICT_STYLE = {"better": "bold green", "worse": "bold red", "no change": "dim",
                  "too few": "yellow"}
_VERDICT_WORDS = {"better": "better", "worse": "worse", "no change": "no clear change"}
CAVEAT = ("A correlation, not a proof: slow and fast sessions also differ in campaign, device "
          "and intent.")


def signed(value: float, digits: int) -> str:
    """"+12", "−0.90"; no sign on what rounds to zero."""
    text = f"{abs(value):,.{digits}f}"
    if float(text.replace(",", "")) == 0:
        return text
    return ("−" if value < 0 else "+") + text


def difference(metric: str, delta: float | None, low: float | None, high: float | None,
               gap: str = " ") -> str:
    """"−340 ms (−420 to −260)": the bounds in the unit of the difference (ms,
    seconds from a second on, CLS to 3 decimals, percentage points to 1); `gap`
    between the difference and its interval (report_layout.BREAK in a table)."""
    if delta is None:
        return "–"
    if metric == "cls_p75":
        divisor, digits, unit = 1.0, 3, ""
    elif metric in ("cwv_good_pct", "conversion_rate"):
        divisor, digits, unit = 1.0, 1, " pts"
    elif abs(delta) >= 1000:
        divisor, digits, unit = 1000.0, 2, " s"
    else:
        divisor, digits, unit = 1.0, 0, " ms"
    text = signed(delta / divisor, digits) + unit
    if low is None or high is None:
        return text
    return f"{text}{gap}({signed(low / divisor, digits)} to {signed(high / divisor, digits)})"


def verdict(row: Any) -> str:
    """The verdict in words; "too few" says how many more page views (sessions
    for the conversion rate) it needs."""
    if not row["subject_n"] and not row["baseline_n"]:
        return ""  # neither side measured the metric
    if row["verdict"] == "too few":
        unit = "sessions" if row["metric"] == "conversion_rate" else "page views"
        more = needed(row["subject_n"], row["baseline_n"], TOO_SMALL)
        return f"too few: about {more:,} more {unit} needed"
    return _VERDICT_WORDS.get(row["verdict"], "")


def _cell(row: Any | None) -> Text:
    if row is None:
        return Text("–", style="dim")
    text = Text(difference(row["metric"], row["delta"], row["delta_low"], row["delta_high"],
                           BREAK))
    # The longest verdict, "too few: about 1,234 more page views needed", may break in two.
    words = verdict(row).replace(" more ", f"{BREAK}more ", 1)
    if words:
        text.append("\n" + words, style=_VERDICT_STYLE.get(row["verdict"], ""))
    return text


def _plain(value: Any) -> Text:
    return Text(strip_controls(str(value)))


def comparisons_tables(rows: Iterable[Any], releases: set[tuple[str, str]],
                       width: int) -> list[Table]:
    """One row per site and subject, a column per metric; releases only those in
    `releases` (the report's), variants and the week as the view gives them;
    fitted to `width` columns (report_layout)."""
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        if row["kind"] == "release" and (row["site"], row["subject"]) not in releases:
            continue
        grouped.setdefault((row["site"], row["kind"], row["subject"]), {})[row["metric"]] = row
    if not grouped:
        return []
    order = {kind: i for i, kind in enumerate(KINDS)}
    shown = []
    for (site, kind, subject), metrics in sorted(
            grouped.items(), key=lambda item: (item[0][0], order.get(item[0][1], 9), item[0][2])):
        baseline = next(iter(metrics.values()))["baseline"]
        label = {"release": "release", "ab_variant": "variant", "period": "7 days from"}[kind]
        shown.append(Row((_plain(site), _plain(f"{label} {subject}").append("\nvs ").append(
            _plain(baseline))), [_cell(metrics.get(metric)) for metric in METRICS]))
    return fit("Differences with their 95 % interval (rum.comparisons)", ("site", "compared"),
               [_HEADERS[metric] for metric in METRICS], shown, width)


def _estimate(value: float | None, low: float | None, high: float | None, digits: int,
              unit: str = "") -> str:
    if value is None:
        return "–"
    if low is None or high is None:
        return signed(value, digits) + unit
    return (f"{signed(value, digits)}{unit}{BREAK}"
            f"({signed(low, digits)} to {signed(high, digits)})")


def worth_tables(rows: Iterable[Any], currencies: Mapping[str, str], width: int) -> list[Table]:
    """What speed is worth, for each site, channel and campaign, the revenue in
    each site's currency; fitted to `width` columns (report_layout)."""
    rows = list(rows)
    if not rows:
        return []
    first = rows[0]
    good = THRESHOLDS["lcp"][0] / 1000
    shown = []
    for row in rows:
        pct = ("–" if row["fast_conversion_rate"] is None or row["slow_conversion_rate"] is None
               else f"{row['fast_conversion_rate']:.1f} % /{BREAK}"
                    f"{row['slow_conversion_rate']:.1f} %")
        currency = currencies.get(row["site"])
        revenue = ("–" if not row["revenue_per_conversion"] else _estimate(
            row["extra_revenue"], row["extra_revenue_low"], row["extra_revenue_high"], 2,
            f" {currency}" if currency else ""))
        sessions = Text(f"{row['slow_sessions']:,} /{BREAK}{row['sessions']:,}")
        if row["too_small"]:
            sessions.append(f"{BREAK}too few", style="bold yellow")
        shown.append(Row(
            (_plain(row["site"]),
             _plain("all" if row["scope"] == "site" else f"{row['scope']} {row['scope_value']}")),
            (sessions, Text(pct),
             Text(_estimate(row["extra_conversions"], row["extra_conversions_low"],
                            row["extra_conversions_high"], 0)),
             Text(revenue)), style="dim" if row["too_small"] else None))
    return fit(f"What speed is worth, {first['first_day']} to {first['last_day']}"
               " (rum.speed_worth): conversions had slow-landing sessions (LCP over"
               f" {good:g} s) converted like fast ones", ("site", "scope"),
               ("slow / all sessions", "conversion fast / slow", "extra conversions (95 %)",
                "extra revenue (95 %)"), shown, width)
