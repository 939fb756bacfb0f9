// Headline tiles: p75 LCP, INP and CLS with their good / needs-improvement /
// poor split, the share of good experiences and the conversion rate, each with
// its change against the previous period of the same length.
import {h} from './dom.js';
import {COLOURS, consentShare, rating, split} from './format.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

/**
 * The change against the previous period, coloured by whether it is better.
 * @param {{kind: 'lcp'|'inp'|'cls'|'pct', now: number|null, before: number|null, lowerIsBetter: boolean, days: number}} change
 * @param {Format} f @param {T} t
 */
const changeLine = ({kind, now, before, lowerIsBetter, days}, f, t) => {
  if (now == null || before == null) return h('p', {class: 'change none'}, t('no_previous', {days}));
  const delta = now - before;
  const better = delta === 0 ? null : (delta < 0) === lowerIsBetter;
  const arrow = delta > 0 ? '▲' : delta < 0 ? '▼' : '=';
  return h('p', {class: `change ${better === null ? 'same' : better ? 'better' : 'worse'}`, dataset: {delta}},
    h('span', {class: 'arrow', 'aria-hidden': 'true'}, arrow), ' ', f.delta(kind, delta),
    better === null ? '' : h('span', {class: 'sr-only'}, ` (${t(better ? 'better' : 'worse')})`),
    ' ', h('span', {class: 'muted'}, t('vs_previous', {days})));
};

/** The good / NI / poor bar with its percentages. @param {{good: number, ni: number, poor: number}|null} shares @param {Format} f @param {T} t */
const splitBar = (shares, f, t) => {
  if (!shares) return h('div', {class: 'split empty'});
  const parts = /** @type {const} */ (['good', 'ni', 'poor']);
  return h('div', {class: 'split'},
    h('div', {class: 'bar', role: 'img', 'aria-label': parts.map((p) => `${t(p)} ${f.percent(shares[p])}`).join(', ')},
      ...parts.map((p) => h('span', {class: p, style: {width: `${shares[p]}%`, background: COLOURS[p]}}))),
    h('ul', {class: 'legend'}, ...parts.map((p) => h('li', {dataset: {share: p, value: shares[p]}},
      h('i', {style: {background: COLOURS[p]}}), f.percent(shares[p]), ' ', h('span', {class: 'muted'}, t(p))))));
};

/**
 * Issue 22: which share of page views the p75 speaks for, and the browsers
 * that report none of the metric ("LCP measured on 71 % of page views").
 * @param {{pct: number|null, missing_browsers: string[]}|undefined} coverage
 * @param {string} metric @param {Format} f @param {T} t
 */
const coverageLine = (coverage, metric, f, t) =>
  coverage && coverage.pct != null
    ? h('p', {class: 'muted small', dataset: {coverage: coverage.pct}},
      t('coverage', {metric, share: f.percent(coverage.pct)}),
      coverage.missing_browsers.length ? t('coverage_missing', {browsers: coverage.missing_browsers.join(', ')}) : null)
    : null;

/**
 * @param {any} data the data endpoint's answer @param {Format} f @param {T} t
 * @returns {HTMLElement[]}
 */
export const renderTiles = (data, f, t) => {
  const now = data.period.current;
  const before = data.period.previous;
  const days = Math.round((Date.parse(data.filters.to) - Date.parse(data.filters.from)) / 86400e3) + 1;
  const metricTile = (/** @type {'lcp'|'inp'|'cls'} */ metric) => {
    const value = now[`${metric}_p75`];
    const rated = rating(value, data.thresholds[metric]);
    return h('section', {class: `tile ${rated || ''}`, dataset: {tile: metric}},
      h('h3', null, t(metric)),
      h('p', {class: 'value', title: t('p75_help'), style: {color: rated ? COLOURS[`${rated}Text`] : ''}, dataset: {value}},
        h('span', {class: 'figure'}, f.metric(metric, value)), h('span', {class: 'p75'}, ' p75')),
      changeLine({kind: metric, now: value, before: before[`${metric}_p75`], lowerIsBetter: true, days}, f, t),
      splitBar(split(now[`${metric}_good_pct`], now[`${metric}_poor_pct`]), f, t),
      h('p', {class: 'muted small'}, t('page_views_n', {n: f.count(now[`${metric}_samples`])})),
      coverageLine(data.period.coverage?.[metric], t(`${metric}_short`), f, t));
  };
  const share = consentShare(now);
  return [
    metricTile('lcp'),
    metricTile('inp'),
    metricTile('cls'),
    h('section', {class: 'tile', dataset: {tile: 'cwv'}},
      h('h3', null, t('cwv')),
      h('p', {class: 'value', dataset: {value: now.cwv_good_pct}}, h('span', {class: 'figure'}, f.percent(now.cwv_good_pct))),
      changeLine({kind: 'pct', now: now.cwv_good_pct, before: before.cwv_good_pct, lowerIsBetter: false, days}, f, t),
      h('p', {class: 'muted small'}, t('cwv_help')),
      h('p', {class: 'muted small'}, t('page_views_n', {n: f.count(now.page_views)}))),
    h('section', {class: 'tile marketing', dataset: {tile: 'conversion'}},
      h('h3', null, t('conversion')),
      h('p', {class: 'value', dataset: {value: now.conversion_rate}}, h('span', {class: 'figure'}, f.percent(now.conversion_rate))),
      changeLine({kind: 'pct', now: now.conversion_rate, before: before.conversion_rate, lowerIsBetter: false, days}, f, t),
      h('p', {class: 'muted small'}, t('conversion_help')),
      h('p', {class: 'consent small', dataset: {consentShare: share}}, t('consent_short', {share: f.percent(share)}))),
  ];
};
