"""`binome serve --demo`: the `demo` site with a month of a shop's traffic (issue 24).

Every local page loads in under half a second, so a demo fed only by its own
pages shows one bar in "What speed costs", one dot per trend and "too few"
everywhere. The demo is seeded instead with 30 days ending today of a small
shop's visits, told to show what Binome is for:

  * campaigns whose landing pages differ in speed: `brand-search` lands on the
    light home page, `spring-sale` on a sale page, `summer-lookbook` on an
    image-heavy lookbook, `black-friday-teaser` on a page with a video hero;
  * a release that made pages faster (images served by a CDN) and, ten days
    later, one that did not (a chat widget: LCP unchanged, INP worse);
  * an A/B test (`ab_variant` A or B: B's product pages have a lighter hero
    image, and convert a little better);
  * mobiles slower than desktops, visitors from several countries, a third of
    them at the performance consent level;
  * sessions that convert less, and bounce more, the slower their landing
    page: "What speed costs" and "What speed is worth" show the slope.

The beacons go into binome.beacons by COPY, folded by its trigger as the
collector's batches are (collector/traffic.py), in one transaction: a seeding
cut short leaves nothing, and the next start seeds again. Closed days are then
rolled up as `binome maintain` does, and two shared objectives are added as
`binome objective add` does. A site that has data is never seeded again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

from collector import db, objectives
from collector.maintenance import maintain_once
from collector.row import Record
from collector.settings import Settings
from collector.traffic import PageView, beacon_rows, copy_day, lognormal

log = logging.getLogger(__name__)

SITE = "demo"
DAYS = 30
PAGE_VIEWS_PER_DAY = 2000  # on a weekday; weekends bring a fifth more
# Seeding the same site from two processes at once: one waits, then finds data.
SEED_LOCK = 0x62696E6F6D6564  # "binomed"


@dataclass(frozen=True)
class Acquisition:
    """How a session arrives, and the page it lands on."""

    weight: float
    channel: str
    landing: str
    page_type: str
    lcp_median: float  # ms, the landing page's on a desktop before the CDN release
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    ref_origin: str | None = None
    intent: float = 1.0  # conversion, relative to other sessions as fast


ACQUISITIONS = (
    Acquisition(0.27, "search", "/p/*", "product", 2000, ref_origin="https://www.google.com"),
    Acquisition(0.16, "direct", "/", "home", 1700),
    Acquisition(0.05, "referral", "/p/*", "product", 2000,
                ref_origin="https://www.modeblog.fr"),
    Acquisition(0.13, "paid", "/", "home", 1500, "brand-search", "google", "cpc",
                "https://www.google.com", intent=1.2),
    Acquisition(0.15, "email", "/sale", "landing", 2400, "spring-sale", "newsletter", "email",
                intent=1.3),
    Acquisition(0.11, "social", "/lookbook", "landing", 3600, "summer-lookbook", "instagram",
                "social", "https://www.instagram.com", intent=0.8),
    Acquisition(0.13, "paid", "/promo/black-friday", "landing", 5200, "black-friday-teaser",
                "criteo", "display", intent=0.9),
)
PRODUCTS = ("robe-lin", "chemise-oxford", "jean-brut", "pull-marin", "veste-velours",
            "baskets-toile", "sac-cuir", "ceinture-tressee", "echarpe-laine", "bottines-daim",
            "tshirt-bio", "short-chino")
PAGE_LCP_MEDIAN = {"home": 1700, "product": 2000, "cart": 1300, "checkout": 1200}
DEVICES = (("mobile", 0.58, 1.45), ("desktop", 0.36, 1.0), ("tablet", 0.06, 1.2))
BROWSERS = {"mobile": ((("Chrome Mobile", "Android"), 0.6), (("Mobile Safari", "iOS"), 0.4)),
            "desktop": ((("Chrome", "Windows"), 0.5), (("Edge", "Windows"), 0.15),
                        (("Safari", "Mac OS X"), 0.2), (("Firefox", "Windows"), 0.15)),
            "tablet": ((("Mobile Safari", "iOS"), 1.0),)}
# Country, share, slowness (the shop's servers are in Paris).
COUNTRIES = (("FR", 0.52, 1.0), ("BE", 0.1, 1.0), ("CH", 0.07, 1.0), ("DE", 0.07, 1.05),
             ("GB", 0.06, 1.05), ("ES", 0.05, 1.05), ("US", 0.06, 1.3), ("CA", 0.04, 1.3),
             ("IT", 0.03, 1.05))
MARKETING_SHARE = 0.66


@dataclass(frozen=True)
class Release:
    first_day: int  # index of its first day among the DAYS (may be before the first)
    lcp: float  # LCP relative to the first release
    inp: float  # INP relative to the first release


# The story's releases; each is named by the date it shipped.
RELEASES = (Release(-9, 1.0, 1.0),
            Release(11, 0.7, 1.0),  # images through a CDN, in AVIF: faster
            Release(21, 0.7, 1.35))  # a chat widget: LCP as before, INP worse


def release_names(first: dt.date) -> list[str]:
    return [f"{first + dt.timedelta(days=r.first_day):%Y.%m.%d}" for r in RELEASES]


def _release(rng: random.Random, index: int) -> int:
    """The release a session of day `index` gets: the newest shipped, except for
    a share of visitors still on the previous one the day it ships (cached pages)."""
    current = max(i for i, r in enumerate(RELEASES) if r.first_day <= index)
    if current and RELEASES[current].first_day == index and rng.random() < 0.4:
        return current - 1
    return current


def conversion_chance(landing_lcp: float, intent: float, variant: str) -> float:
    """A session's chance to buy: falling with its landing page's LCP (about 7 %
    at 1 s, 3 % at 3 s, 1 % at 6 s), times its source's intent; variant B's
    product pages convert a fifth better."""
    chance = 0.075 * math.exp(-0.42 * (landing_lcp / 1000 - 1)) * intent
    return min(chance * (1.2 if variant == "B" else 1.0), 0.2)


def _weighted(rng: random.Random, options: tuple[tuple[object, float, float], ...]
              ) -> tuple[object, float]:
    """(item, factor) drawn by share from (item, share, factor) triples."""
    item, _, factor = rng.choices(options, [o[1] for o in options])[0]
    return item, factor


def day_rows(rng: random.Random, first: dt.date, index: int, now: dt.datetime
             ) -> Iterator[Record]:
    """The beacons of day `index` (first + index), up to `now`."""
    day = first + dt.timedelta(days=index)
    midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
    # Weekends bring more visits, and the shop grows a little over the month.
    target = PAGE_VIEWS_PER_DAY * (1.2 if day.weekday() >= 5 else 1.0) * (0.9 + index / 150)
    releases = release_names(first)
    made = 0
    session = 0
    while made < target:
        session += 1
        hour = rng.choices(range(24), (1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 8, 8, 7, 7, 7, 7,
                                       8, 9, 10, 9, 6, 3))[0]
        t0 = midnight + dt.timedelta(hours=hour, seconds=rng.randrange(3600))
        acquisition = rng.choices(ACQUISITIONS, [a.weight for a in ACQUISITIONS])[0]
        device, device_factor = _weighted(rng, DEVICES)
        country, country_factor = _weighted(rng, COUNTRIES)
        browser, os_name = rng.choices(*zip(*BROWSERS[str(device)], strict=True))[0]
        release = RELEASES[_release(rng, index)]
        release_name = releases[RELEASES.index(release)]
        variant = rng.choice("AB")
        marketing = rng.random() < MARKETING_SHARE
        sid = f"demo{day:%m%d}{session:05d}{rng.randrange(10**6):06d}"
        slowness = device_factor * country_factor

        def page_view(page: int, when: dt.datetime, path: str, page_type: str,
                      lcp_median: float) -> PageView:
            variant_factor = 0.82 if variant == "B" and page_type == "product" else 1.0
            lcp = lognormal(rng, lcp_median * slowness * release.lcp * variant_factor, 0.4)
            ttfb = lognormal(rng, 280 * slowness, 0.45)
            inp = (lognormal(rng, 120 * device_factor * release.inp, 0.55)
                   if rng.random() < 0.75 else None)
            cls_mean = 0.2 if path == "/promo/black-friday" else 0.05
            cls = 0.0 if rng.random() < 0.45 else round(rng.expovariate(1 / cls_mean), 4)
            return PageView(
                site=SITE, pv=f"{sid}p{page}", sid=sid, t0=when, marketing=marketing,
                path=path, release=release_name,
                dims={"page_type": page_type, "ab_variant": variant}, device_class=str(device),
                browser=browser, os=os_name, country=str(country), lcp=lcp,
                fcp=max(round(lcp * rng.uniform(0.45, 0.8), 1), ttfb + 50.0), ttfb=ttfb,
                inp=inp, cls=cls, channel="internal" if page else acquisition.channel,
                utm_source=None if page else acquisition.utm_source,
                utm_medium=None if page else acquisition.utm_medium,
                utm_campaign=None if page else acquisition.campaign,
                ref_origin=None if page else acquisition.ref_origin)

        landing_path = (f"/p/{rng.choice(PRODUCTS)}" if acquisition.landing == "/p/*"
                        else acquisition.landing)
        landing_median = (acquisition.lcp_median if acquisition.page_type != "product"
                          else PAGE_LCP_MEDIAN["product"])
        views = [page_view(0, t0, landing_path, acquisition.page_type, landing_median)]
        landing_lcp = views[0].lcp or 0.0
        # Slow landings lose visitors at once: a third bounce at 1 s, two thirds at 5 s.
        bounces = rng.random() < min(0.3 + 0.08 * (landing_lcp / 1000 - 1), 0.75)
        if not bounces:
            converts = rng.random() < conversion_chance(landing_lcp, acquisition.intent,
                                                        variant) / 0.6
            pages = 1 + min(1 + int(rng.expovariate(1 / 1.8)), 7)
            for page in range(1, pages):
                t0 += dt.timedelta(seconds=rng.randrange(15, 240))
                kind = rng.choices(("product", "home", "cart"), (0.72, 0.13, 0.15))[0]
                path = {"product": f"/p/{rng.choice(PRODUCTS)}", "home": "/",
                        "cart": "/cart"}[kind]
                views.append(page_view(page, t0, path, kind, PAGE_LCP_MEDIAN[kind]))
            if converts:
                for page, (path, kind) in enumerate((("/cart", "cart"),
                                                     ("/checkout/thanks", "checkout")),
                                                    start=pages):
                    t0 += dt.timedelta(seconds=rng.randrange(30, 300))
                    views.append(page_view(page, t0, path, kind, PAGE_LCP_MEDIAN[kind]))
                views[-1].revenue = round(lognormal(rng, 64, 0.5), 2)
        made += len(views)  # today's target counts the hours still to come
        for view in views:
            if view.t0 > now:  # today ends now
                break
            # One beacon each: half the rows of the snippet's usual 1 to 3, for a
            # seeding of seconds; the page views are the same.
            yield from beacon_rows(rng, view, split=False)


# Shared objectives, as `binome objective add` takes them: (metric, target, --where).
# Desktops meet the LCP target; mobiles and the slow campaign's landings miss theirs.
OBJECTIVES = (("lcp_p75", "2500", ("device_class=desktop",)),
              ("cwv_good_pct", "75", ("device_class=mobile",)),
              ("conversion_rate", "3", ("utm_campaign=black-friday-teaser", "landing=true")))


async def has_data(conn: asyncpg.Connection, site: str = SITE) -> bool:
    """True when the site has stored beacons (its page views go with them: retention
    drops both). binome_writer may ask too (the start after `serve` dropped the
    owner's credentials: collector/cli.py)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM binome.beacons WHERE site = $1)", site))


@dataclass(frozen=True)
class Seeded:
    page_views: int
    beacons: int
    first_day: dt.date
    last_day: dt.date
    seconds: float


async def seed(conn: asyncpg.Connection, today: dt.date | None = None,
               seed_value: int = 24) -> Seeded | None:
    """Store the demo's 30 days ending today, unless the site has data (None then)."""
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    today = today or now.date()
    if today < now.date():
        now = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    first = today - dt.timedelta(days=DAYS - 1)
    rng = random.Random(seed_value)
    await conn.execute("SELECT pg_advisory_lock($1)", SEED_LOCK)
    try:
        if await has_data(conn):
            return None
        log.info("seeding the demo site with 30 days of traffic (once)")
        beacons = 0
        async with conn.transaction():
            for index in range(DAYS):
                beacons += await copy_day(conn, first + dt.timedelta(days=index),
                                          day_rows(rng, first, index, now))
            # What the collectors would have counted (rum.ingest_health).
            await conn.execute("""
                INSERT INTO binome.ingest_counts AS c (site, minute, received, accepted,
                                                       rows_written)
                SELECT site, date_trunc('minute', received_at), count(*), count(*), count(*)
                FROM binome.beacons WHERE site = $1 GROUP BY 1, 2
                ON CONFLICT (site, minute) DO UPDATE SET
                    received = c.received + excluded.received,
                    accepted = c.accepted + excluded.accepted,
                    rows_written = c.rows_written + excluded.rows_written""", SITE)
            page_views = await conn.fetchval(
                "SELECT count(*) FROM binome.page_views WHERE site = $1", SITE)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", SEED_LOCK)
    return Seeded(page_views, beacons, first, today, time.perf_counter() - started)


async def seed_demo(owner_url: str, settings: Settings) -> Seeded | None:
    """`binome serve --demo`'s seeding, as the schema's owner (it registers the
    site and its objectives, as `binome site add` and `binome objective add`
    do); the closed days are then rolled up as `binome maintain` does."""
    started = time.perf_counter()
    conn = await db.connect(owner_url)
    try:
        if (await conn.fetchval("SELECT EXISTS (SELECT 1 FROM binome.sites WHERE site = $1)",
                                SITE) and await has_data(conn)):
            return None  # nothing to write: what a role that may not write them sees too
        await db.add_site(conn, SITE, [])
        seeded = await seed(conn)
        if seeded is None:
            return None
        await conn.execute("ANALYZE binome.page_views")
    finally:
        await conn.close()
    report = await maintain_once(owner_url, settings)
    conn = await db.connect(owner_url)
    try:
        for metric, target, where in OBJECTIVES:
            name = objectives.default_name(SITE, metric, objectives.parse_scope(where))
            if not await conn.fetchval("SELECT true FROM binome.objectives WHERE name = $1",
                                       name):
                await objectives.add(conn, SITE, metric, target, None, where)
    finally:
        await conn.close()
    log.info("demo site seeded", extra={
        "page_views": seeded.page_views, "beacons": seeded.beacons,
        "days": f"{seeded.first_day}..{seeded.last_day}", "seconds": round(seeded.seconds, 1),
        "maintenance": report.summary() if report else "skipped: another run in progress"})
    # The whole of it: the beacons, their rollups and the objectives' first check.
    return dataclasses.replace(seeded, seconds=time.perf_counter() - started)
