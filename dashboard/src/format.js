// Ratings (CrUX thresholds, sent by the collector from collector/indicators.py)
// and how figures are written. Every figure is rounded by Intl.NumberFormat,
// which (in V8) rounds half away from zero on the shortest decimal that reads
// back as the number, not on its exact binary value: 3175 ms is "3.18 s",
// though 3175 / 1000 is 3.17499999... in binary. The tests format the SQL
// views' figures the same way and compare the text.

/** @typedef {'lcp'|'inp'|'cls'} Metric */
/** @typedef {'good'|'ni'|'poor'} Rating */

/** Fills (CrUX / PageSpeed Insights colours) and darker shades for text on white. */
export const COLOURS = {
  good: '#0cce6b', ni: '#ffa400', poor: '#ff4e42',
  goodText: '#0a7c42', niText: '#a35400', poorText: '#c8261a',
};

/**
 * good when value <= good threshold, poor when above the poor one (web.dev/articles/vitals).
 * @param {number|null|undefined} value
 * @param {[number, number]} thresholds
 * @returns {Rating|null}
 */
export const rating = (value, [good, poor]) =>
  value == null ? null : value <= good ? 'good' : value <= poor ? 'ni' : 'poor';

/** @param {string} locale */
export const formatter = (locale) => {
  /** @type {Map<string, Intl.NumberFormat>} */
  const cache = new Map();
  /** @param {number} digits */
  const fixed = (digits) => {
    const key = String(digits);
    if (!cache.has(key)) {
      cache.set(key, new Intl.NumberFormat(locale, {minimumFractionDigits: digits, maximumFractionDigits: digits}));
    }
    return /** @type {Intl.NumberFormat} */ (cache.get(key));
  };
  // French writes "72,4 %" with a narrow no-break space; English "72.4%".
  const percentSign = locale.toLowerCase().startsWith('fr') ? '\u202f%' : '%';
  const unit = (/** @type {string} */ u) => `\u00a0${u}`;
  const missing = '–';

  const f = {
    missing,
    /** Up to `digits` decimals, no trailing zeros. @param {number} n @param {number} digits */
    number: (n, digits) => new Intl.NumberFormat(locale, {maximumFractionDigits: digits}).format(n),
    /** @param {number|null|undefined} n */
    count: (n) => (n == null ? missing : fixed(0).format(n)),
    /** Milliseconds: "850 ms", from a second on "2.14 s". @param {number|null|undefined} ms */
    duration: (ms) => (ms == null ? missing : ms >= 1000 ? fixed(2).format(ms / 1000) + unit('s') : fixed(0).format(ms) + unit('ms')),
    /** @param {number|null|undefined} value */
    cls: (value) => (value == null ? missing : fixed(3).format(value)),
    /** A percentage given as 0-100. @param {number|null|undefined} pct */
    percent: (pct) => (pct == null ? missing : fixed(1).format(pct) + percentSign),
    /** @param {number|null|undefined} amount */
    money: (amount) => (amount == null ? missing : fixed(2).format(amount)),
    /** A threshold as people write it: "2.5 s", "200 ms", "0.1". @param {Metric} metric @param {number} value */
    threshold: (metric, value) => (metric === 'cls' ? f.number(value, 3)
      : value >= 1000 ? f.number(value / 1000, 2) + unit('s') : f.number(value, 0) + unit('ms')),
    /** @param {Metric} metric @param {number|null|undefined} value */
    metric: (metric, value) => (metric === 'cls' ? f.cls(value) : f.duration(value)),
    /**
     * A change with its sign: "+120 ms", "−0.020", "+1.5 pts".
     * @param {Metric|'pct'} kind @param {number} delta
     */
    delta: (kind, delta) => {
      const sign = delta > 0 ? '+' : delta < 0 ? '−' : '±';
      const size = Math.abs(delta);
      const body = kind === 'pct' ? fixed(1).format(size) + unit(locale.toLowerCase().startsWith('fr') ? 'pt' : 'pts') : f.metric(kind, size);
      return sign + body;
    },
  };
  return f;
};

/**
 * The share of a metric's page views that were good / needed improvement / were poor.
 * @param {number|null|undefined} goodPct @param {number|null|undefined} poorPct
 * @returns {{good: number, ni: number, poor: number}|null}
 */
export const split = (goodPct, poorPct) =>
  goodPct == null || poorPct == null ? null : {good: goodPct, ni: Math.max(0, 100 - goodPct - poorPct), poor: poorPct};

/**
 * The share (0-100) of page views measured with marketing consent.
 * @param {{page_views: number, marketing_page_views: number}|null|undefined} counts
 */
export const consentShare = (counts) =>
  counts && counts.page_views ? (100 * counts.marketing_page_views) / counts.page_views : null;

/**
 * The days from..to (YYYY-MM-DD, UTC) and presets: the last N days ending today.
 * @param {Date} now @param {number} days
 */
export const lastDays = (now, days) => {
  const to = now.toISOString().slice(0, 10);
  const from = new Date(Date.parse(to) - (days - 1) * 86400e3).toISOString().slice(0, 10);
  return {from, to};
};

/** @param {string} from @param {string} to */
export const daysBetween = (from, to) => Math.round((Date.parse(to) - Date.parse(from)) / 86400e3) + 1;
