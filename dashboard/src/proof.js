// Proof of gains (issue 21): a difference is written with its 95 % interval
// and the verdict in words, "−340 ms (−420 to −260) better", never as a bare
// number. The figures, intervals and verdicts are rum.comparisons' (sent by
// the collector, collector/proof.py); only their writing is done here.
import {h} from './dom.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */
/** @typedef {'lcp'|'inp'|'cls'|'pct'} Kind */
/**
 * A row of rum.comparisons.
 * @typedef {{kind: string, subject: string, baseline: string, metric: string,
 *   subject_value: number|null, baseline_value: number|null, delta: number|null,
 *   delta_low: number|null, delta_high: number|null, subject_n: number, baseline_n: number,
 *   verdict: string|null}} Comparison
 */

/** The metrics of rum.comparisons, each with how its figures are written. */
export const METRICS = /** @type {const} */ ([
  ['lcp_p75', 'lcp', 'lcp_short'], ['inp_p75', 'inp', 'inp_short'], ['cls_p75', 'cls', 'cls_short'],
  ['cwv_good_pct', 'pct', 'cwv'], ['conversion_rate', 'pct', 'conversion'],
]);

/** @param {string} metric @returns {Kind} */
export const kindOf = (metric) => /** @type {Kind} */ ((METRICS.find(([m]) => m === metric) || [])[1] || 'pct');

/**
 * "+12", "−0.90", "0": a signed figure with `digits` decimals, the sign
 * dropped when it rounds to zero.
 * @param {string} locale @param {number} value @param {number} digits
 */
export const signed = (locale, value, digits) => {
  const size = Math.abs(value);
  const text = new Intl.NumberFormat(locale, {minimumFractionDigits: digits, maximumFractionDigits: digits}).format(size);
  if (Number(size.toFixed(digits)) === 0) return text;
  return (value < 0 ? '−' : '+') + text;
};

/**
 * The interval's bounds in the unit f.delta writes the difference in: ms under
 * a second, else seconds with 2 decimals; CLS with 3; percentage points with 1.
 * @param {Kind} kind @param {number} delta @returns {[number, number]} [divisor, digits]
 */
const unitOf = (kind, delta) => {
  if (kind === 'cls') return [1, 3];
  if (kind === 'pct') return [1, 1];
  return Math.abs(delta) >= 1000 ? [1000, 2] : [1, 0];
};

/**
 * "(−420 to −260)": a difference's 95 % interval; '' without one (too few).
 * @param {Kind} kind @param {number|null} delta @param {number|null} low @param {number|null} high
 * @param {T} t @param {string} locale
 */
const intervalText = (kind, delta, low, high, t, locale) => {
  if (delta == null || low == null || high == null) return '';
  const [divisor, digits] = unitOf(kind, delta);
  return t('interval', {low: signed(locale, low / divisor, digits), high: signed(locale, high / divisor, digits)});
};

/**
 * "−340 ms (−420 to −260)": the difference with its interval; without an
 * interval (too few), the difference alone.
 * @param {Kind} kind @param {number|null} delta @param {number|null} low @param {number|null} high
 * @param {Format} f @param {T} t @param {string} locale
 */
export const differenceText = (kind, delta, low, high, f, t, locale) => {
  if (delta == null) return f.missing;
  const interval = intervalText(kind, delta, low, high, t, locale);
  return interval ? `${f.delta(kind, delta)} ${interval}` : f.delta(kind, delta);
};

/**
 * Page views (sessions for the conversion rate) a `too few` difference still
 * needs: what each side short of rum.too_small's threshold lacks, added up.
 * @param {number} subjectN @param {number} baselineN @param {number} threshold
 */
export const needed = (subjectN, baselineN, threshold) =>
  Math.max(0, threshold - subjectN) + Math.max(0, threshold - baselineN);

/**
 * The verdict in words: "better", "no change", "too few: about 30 more page views needed".
 * @param {Comparison} c @param {number} threshold @param {Format} f @param {T} t
 */
export const verdictText = (c, threshold, f, t) => {
  // Neither side measured the metric (no INP without interactions): nothing to say.
  if (!c.subject_n && !c.baseline_n) return '';
  if (c.verdict === 'too few') {
    const n = f.count(needed(c.subject_n, c.baseline_n, threshold));
    return t(c.metric === 'conversion_rate' ? 'too_few_sessions' : 'too_few_page_views', {n});
  }
  if (c.verdict === 'better' || c.verdict === 'worse' || c.verdict === 'no change') {
    return t(`verdict_${c.verdict.replace(' ', '_')}`);
  }
  return '';
};

/**
 * The difference and its verdict, as one element: class and data-verdict say
 * which verdict, for the colour and for tests.
 * @param {Comparison|undefined} c @param {number} threshold @param {Format} f @param {T} t @param {string} locale
 * @returns {HTMLElement|string}
 */
export const renderDifference = (c, threshold, f, t, locale) => {
  if (!c) return '';
  const verdict = c.verdict || 'none';
  const words = verdictText(c, threshold, f, t);
  const kind = kindOf(c.metric);
  const interval = intervalText(kind, c.delta, c.delta_low, c.delta_high, t, locale);
  return h('span', {class: `difference ${verdict.replace(' ', '-')}`, dataset: {verdict, metric: c.metric}},
    // differenceText's words, the interval free to go under the difference so
    // that a table of them fits its card (issue 24).
    h('span', {class: 'delta'}, c.delta == null ? f.missing : h('span', null, f.delta(kind, c.delta)),
      interval ? ' ' : '', interval ? h('span', null, interval) : ''),
    words ? ' ' : '', words ? h('span', {class: 'verdict'}, words) : '');
};

/**
 * The comparisons of one kind and subject, by metric.
 * @param {Comparison[]} rows @param {string} kind @param {string} subject
 * @returns {Map<string, Comparison>}
 */
export const comparisonsOf = (rows, kind, subject) =>
  new Map((rows || []).filter((c) => c.kind === kind && c.subject === subject).map((c) => [c.metric, c]));

// While the collector computes the differences in the background (their
// figures came with proof.pending), the page asks dashboard/proof again, less
// often as it waits; they take seconds, at most the collector's timeout.
const FIRST_WAIT_MS = 1000;
const LONGEST_WAIT_MS = 5000;
const TRIES = 60;

/**
 * The differences of `site` as the collector knows them now (collector/app.py).
 * @param {string} site @param {string} pageHref
 * @returns {Promise<{proof: {pending: boolean}, comparisons: Comparison[]|null, speed_worth: any[]|null}>}
 */
const fetchProof = async (site, pageHref) => {
  const url = new URL('dashboard/proof', new URL(pageHref));
  url.searchParams.set('site', site);
  const response = await fetch(url, {credentials: 'same-origin', cache: 'no-store'});
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
};

/**
 * Once the page is drawn from `data`: when its differences are pending, wait
 * for them and draw the page again with them, unless `isCurrent()` turned
 * false (other filters chosen). body[data-proof] is pending, ready or
 * unavailable (the browser tests wait on it).
 * @param {any} data @param {string} pageHref @param {() => boolean} isCurrent @param {(data: any) => void} draw
 */
export const followProof = async (data, pageHref, isCurrent, draw) => {
  const mark = (/** @type {string} */ state) => { document.body.dataset.proof = state; };
  if (!data.proof?.pending) {
    mark(data.comparisons === null ? 'unavailable' : 'ready');
    return;
  }
  mark('pending');
  for (let i = 0, wait = FIRST_WAIT_MS; i < TRIES; i++, wait = Math.min(wait * 1.5, LONGEST_WAIT_MS)) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (!isCurrent()) return;
    let answer;
    try {
      answer = await fetchProof(data.filters.site, pageHref);
    } catch {
      continue; // a network blip: ask again
    }
    if (!isCurrent()) return;
    if (!answer.proof.pending) {
      draw({...data, proof: answer.proof, comparisons: answer.comparisons, speed_worth: answer.speed_worth});
      mark(answer.comparisons === null ? 'unavailable' : 'ready');
      return;
    }
  }
  draw({...data, proof: {pending: false}});
  mark('unavailable');
};

/**
 * What a proof section says instead of its figures: being computed, or not this time.
 * @param {any} data @param {T} t @returns {HTMLElement|null}
 */
export const proofPlaceholder = (data, t) => {
  if (data.proof?.pending) return h('p', {class: 'muted pending'}, t('proof_pending'));
  if (data.comparisons === null) return h('p', {class: 'muted unavailable'}, t('proof_unavailable'));
  return null;
};
