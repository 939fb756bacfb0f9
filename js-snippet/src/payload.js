// @ts-check
// The page view's state and the beacons built from it (docs/beacon-format.md, "The beacon").
// Pure: no DOM, no timers, no network, so node's test runner covers it all.
import {num, randomId, str} from './clean.js';

/** Under the 64 KiB keepalive budget that every in-flight beacon of the page shares. */
export const MAX_BEACON_BYTES = 60000;
/** The collector accepts at most 50 metrics and 20 events in one beacon; a
 * page view keeps one report per web-vitals metric name (addMetric), five. */
export const MAX_EVENTS = 20;
export const MAX_DIMS = 20;
/** Events kept when a beacon is still over budget without attribution. */
export const FALLBACK_EVENTS = 5;

/**
 * @typedef {object} PageContext
 * @property {string} href the full URL
 * @property {string} path origin + pathname: the URL without query or fragment
 * @property {string} [ref] document.referrer
 * @property {string} [sid]
 * @property {object} [device]
 * @property {object} [nav]
 */

/** @typedef {Record<string, number>} Losses beacons the page failed to send, by reason */

/**
 * @typedef {object} BeaconMetric
 * @property {string} name
 * @property {number} value
 * @property {string} [id]
 * @property {number} [delta]
 * @property {string} [rating]
 * @property {string} [navigationType]
 * @property {{target: string}} [attribution]
 */

/**
 * @typedef {object} PageView
 * @property {import('./config.js').Config} _config
 * @property {import('./clean.js').Consent} _consent
 * @property {Record<string, string>} _dims
 * @property {string} _pv
 * @property {number} _seq
 * @property {number | undefined} _t0
 * @property {boolean} _sampled
 * @property {boolean} _restored
 * @property {Partial<PageContext>} [_page] what this page view says of itself
 *   instead of the live page: its URL, referrer and nav once the location has moved on
 * @property {Record<string, BeaconMetric>} _metrics reported since the last send, by name
 * @property {object[]} _events recorded since the last send
 */

/**
 * The snippet's state for the page it runs in.
 * @param {import('./config.js').Config} config
 * @param {number | undefined} t0 performance.timeOrigin
 * @param {() => number} random Math.random
 * @returns {PageView}
 */
export const createPageView = (config, t0, random) => {
  const view = /** @type {PageView} */ ({_config: config, _consent: config.consent, _dims: {}});
  startPageView(view, t0, random, false);
  return view;
};

/**
 * The page view a route change of a single-page application starts (issue
 * 22): a new pv, seq 0 and sampling draw, its own t0, URL and referrer (the
 * previous route). Consent and a copy of the dimensions carry over; what is
 * set after the change belongs to the new page view only.
 * @param {PageView} previous
 * @param {number} t0 when the route changed, in epoch ms
 * @param {() => number} random
 * @param {boolean} restored begun by a back/forward cache restore instead
 * @param {Partial<PageContext>} [page]
 * @returns {PageView}
 */
export const nextPageView = (previous, t0, random, restored, page) => {
  const view = /** @type {PageView} */ ({_config: previous._config, _consent: previous._consent, _dims: {...previous._dims}, _page: page});
  startPageView(view, t0, random, restored);
  return view;
};

/**
 * Begins a page view: at load, and again when the page comes back from the
 * back/forward cache (a new pv, seq 0, and a new sampling draw). Dimensions
 * and consent belong to the page and carry over.
 * @param {PageView} view
 * @param {number | undefined} t0 when the page view began, in epoch ms
 * @param {() => number} random
 * @param {boolean} restored
 */
export const startPageView = (view, t0, random, restored) => {
  view._pv = randomId();
  view._seq = 0;
  view._t0 = num(t0, 1e14, 1);
  view._sampled = random() < view._config.sample;
  view._restored = restored;
  view._metrics = {};
  view._events = [];
};

/**
 * binome('consent', level). Withdrawing marketing consent drops the events
 * not yet sent: they may only leave the page with consent.
 * @param {PageView} view
 * @param {import('./clean.js').Consent | undefined} level
 */
export const setConsent = (view, level) => {
  if (!level) return;
  view._consent = level;
  if (level != 'marketing') view._events = [];
};

/**
 * binome('dim', key, value); a null or undefined value removes the dimension.
 * @param {PageView} view
 * @param {unknown} key
 * @param {unknown} value
 */
export const setDim = (view, key, value) => {
  const dims = view._dims;
  if (typeof key != 'string' || !/^[a-z0-9_]{1,32}$/.test(key)) return;
  if (value == null) delete dims[key];
  else if (key in dims || Object.keys(dims).length < MAX_DIMS) dims[key] = /** @type {string} */ (str(value, 128));
};

/**
 * binome('conversion', name, value?, currency?). A conversion is marketing
 * measurement (CNIL, 2025): without that consent it is dropped, not held.
 * @param {PageView} view
 * @param {unknown} name
 * @param {unknown} [value]
 * @param {unknown} [currency]
 */
export const addConversion = (view, name, value, currency) => {
  const label = str(name, 64);
  if (view._consent != 'marketing' || !label || view._events.length >= MAX_EVENTS) return;
  const code = typeof currency == 'string' ? currency.toUpperCase() : '';
  view._events.push({
    name: label,
    value: num(value, 1e12, 2),
    currency: /^[A-Z]{3}$/.test(code) ? code : undefined,
  });
};

/**
 * Keeps a web-vitals report until the next send. A metric reported again
 * (CLS or INP after the page was shown again) replaces the unsent report of
 * the same name and is sent again. Names, ratings and navigation types come
 * from web-vitals 5 as they are: the collector accepts each of its values.
 * @param {PageView} view
 * @param {{name: string, value: number, delta?: number, id?: string, rating?: string, navigationType?: string}} metric
 * @param {string} [target] CSS selector of the element the metric points at
 */
export const addMetric = (view, metric, target) => {
  const digits = metric.name == 'CLS' ? 4 : 1;
  const value = num(metric.value, 1e9, digits);
  if (value != null)
    view._metrics[metric.name] = {
      name: metric.name,
      value,
      id: str(metric.id, 128),
      delta: num(metric.delta, 1e9, digits, -1e9),
      rating: metric.rating,
      navigationType: metric.navigationType,
      attribution: target ? {target} : undefined,
    };
};

/**
 * Counts a lost beacon, or adds back the counts a lost beacon carried.
 * @param {Losses} losses
 * @param {string} reason
 * @param {number} [count]
 */
export const addLoss = (losses, reason, count = 1) => {
  losses[reason] = Math.min(1e4, (losses[reason] || 0) + count);
};

/**
 * JSON of a beacon with lone surrogates and NUL replaced by U+FFFD:
 * JSON.stringify escapes them as \udxxx and \u0000, which the collector
 * refuses (invalid Unicode; PostgreSQL text cannot hold NUL).
 * @param {object} beacon
 */
const serialize = (beacon) => JSON.stringify(beacon).replace(/\\u(d[89a-f]..|0000)/g, '\\ufffd');

/**
 * The next beacon of the page view as JSON, or '' when nothing may or need be
 * sent: outside the sample, at consent 'none', when nothing changed since the
 * last send (seq 0 always goes: it is the page view), or on a page that is not
 * http(s). The page is read only once a beacon is due, so a page view that is
 * not measured never touches sessionStorage. Advances seq and forgets what it
 * sent.
 * A page view sends the losses counted since the last beacon (`lost`) and
 * forgets them; a beacon over the keepalive budget even without attribution
 * and most events is not sent at all (the browser would refuse it) but
 * counted as lost, `oversize`.
 * @param {PageView} view
 * @param {() => PageContext} readPage
 * @param {Losses} [losses] taken into the beacon, then emptied
 * @returns {string}
 */
export const takeBeacon = (view, readPage, losses = {}) => {
  const consent = view._consent;
  const metrics = Object.values(view._metrics);
  const events = view._events;
  if (!view._sampled || consent == 'none' || (view._seq && !metrics.length && !events.length)) return '';
  const page = readPage();
  if (!/^https?:\/\//.test(page.href)) return '';
  const marketing = consent == 'marketing';
  const dims = view._dims;
  const beacon = {
    v: 1,
    consent,
    site: view._config.site,
    pv: view._pv,
    seq: view._seq,
    t0: view._t0,
    sid: page.sid,
    // At 'performance' the page sends no query string (campaign parameters),
    // no referrer, no dimension but page_type and no event (docs/beacon-format.md, "Consent").
    url: marketing && page.href.length <= 2048 ? page.href : page.path.slice(0, 2048),
    ref: marketing ? str(page.ref, 2048) : undefined,
    release: view._config.release,
    dims: marketing ? dims : 'page_type' in dims ? {page_type: dims.page_type} : {},
    device: page.device,
    nav: page.nav,
    metrics,
    events: marketing ? events : undefined,
    lost: Object.keys(losses).length ? {...losses} : undefined,
  };
  // sendBeacon and fetch keepalive alike refuse a body over the page's 64 KiB
  // budget: attribution goes first, then most events. Every other field is
  // capped so that what remains fits.
  let json = serialize(beacon);
  const over = () => new Blob([json]).size > MAX_BEACON_BYTES;
  if (over()) {
    for (const m of beacon.metrics) m.attribution = undefined;
    json = serialize(beacon);
    if (over() && marketing && events.length > FALLBACK_EVENTS) {
      beacon.events = events.slice(0, FALLBACK_EVENTS);
      json = serialize(beacon);
    }
  }
  view._seq++;
  view._metrics = {};
  view._events = [];
  if (over()) {
    addLoss(losses, 'oversize');
    return '';
  }
  for (const reason in losses) delete losses[reason];
  return json;
};
