// "What speed costs": conversion rate (bars, in the CrUX colour of the
// landing page's LCP) and bounce rate (line) per 500 ms bucket of landing LCP,
// with one sentence a marketer can repeat, and the figures in a table.
import uPlot from 'uplot';
import {h} from './dom.js';
import {COLOURS, consentShare, rating} from './format.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

/** "2–2.5 s", the last bucket "10 s+". @param {number} ms @param {Format} f */
export const bucketLabel = (ms, f) =>
  ms >= 10000 ? `${f.number(10, 1)}\u00a0s+` : `${f.number(ms / 1000, 1)}–${f.number((ms + 500) / 1000, 1)}\u00a0s`;

/**
 * Conversion rate of the sessions in the buckets `keep` selects (exact: buckets partition sessions).
 * @param {any[]} rows @param {(ms: number) => boolean} keep
 */
export const pooledRate = (rows, keep) => {
  const chosen = rows.filter((r) => keep(r.lcp_bucket_ms));
  const sessions = chosen.reduce((n, r) => n + r.sessions, 0);
  return sessions ? (100 * chosen.reduce((n, r) => n + r.conversions, 0)) / sessions : null;
};

/** @param {HTMLElement} holder @param {any[]} rows @param {any} data @param {Format} f @param {T} t */
const chart = (holder, rows, data, f, t) => {
  const xs = rows.map((_, i) => i);
  const colours = rows.map((r) => {
    const rated = rating(r.lcp_bucket_ms, data.thresholds.lcp) || 'good';
    // Too few sessions to read: the same colour, faded.
    return r.too_small ? `${COLOURS[rated]}55` : COLOURS[rated];
  });
  const width = () => Math.max(280, holder.clientWidth);
  const plot = new uPlot({
    width: width(),
    height: 240,
    legend: {show: true, live: false},
    cursor: {y: false},
    scales: {x: {time: false, range: [-0.6, rows.length - 0.4]}, conversion: {range: (_u, _lo, hi) => [0, Math.max(1, hi) * 1.15]}, bounce: {range: [0, 100]}},
    axes: [
      {values: (_u, splits) => splits.map((i) => (Number.isInteger(i) && rows[i] ? bucketLabel(rows[i].lcp_bucket_ms, f) : '')), space: 50, size: 34, gap: 4, font: '11px system-ui, sans-serif', grid: {show: false}},
      {scale: 'conversion', values: (_u, splits) => splits.map((v) => f.percent(v)), size: 58, font: '11px system-ui, sans-serif'},
      {scale: 'bounce', side: 1, values: (_u, splits) => splits.map((v) => f.percent(v)), size: 58, grid: {show: false}, font: '11px system-ui, sans-serif', stroke: '#5b4bb7'},
    ],
    series: [
      {},
      {label: t('conversion'), scale: 'conversion', fill: COLOURS.good, stroke: '#1f2a44', width: 0,
        paths: uPlot.paths.bars?.({size: [0.7, 40], disp: {fill: {unit: 3, values: () => colours}}}), points: {show: false}},
      {label: t('bounce_rate'), scale: 'bounce', stroke: '#5b4bb7', width: 2, dash: [6, 4], points: {show: true, size: 5, fill: '#5b4bb7'}},
    ],
  }, [xs, rows.map((r) => r.conversion_rate), rows.map((r) => r.bounce_rate)], holder);
  new ResizeObserver(() => {
    if (Math.abs(plot.width - width()) > 2) plot.setSize({width: width(), height: 240});
  }).observe(holder);
};

/**
 * @param {any} data @param {Format} f @param {T} t
 * @returns {HTMLElement[]}
 */
export const renderSpeed = (data, f, t) => {
  const rows = data.speed;
  if (!rows.length) return [h('p', {class: 'muted'}, t('no_data'))];
  const [good, poor] = data.thresholds.lcp;
  const fast = pooledRate(rows, (ms) => ms + 500 <= good);
  const slow = pooledRate(rows, (ms) => ms >= poor);
  const sessions = rows.reduce((/** @type {number} */ n, /** @type {any} */ r) => n + r.sessions, 0);
  // These sessions span every day of the site: so does the consented share beside them.
  const share = consentShare(data.all_time);
  const holder = h('div', {class: 'chart'});
  requestAnimationFrame(() => chart(holder, rows, data, f, t));
  return [
    h('p', {class: 'summary', dataset: {fast, slow}},
      t('speed_summary', {fast: f.percent(fast), slow: f.percent(slow)})),
    holder,
    h('p', {class: 'consent small'}, t('sessions_n', {n: f.count(sessions)}), ' · ', t('speed_help')),
    h('p', {class: 'consent small', dataset: {consentShare: share}}, t('consent_all_time', {share: f.percent(share)})),
    h('details', null, h('summary', null, t('show_figures')),
      h('div', {class: 'table-scroll'}, h('table', {class: 'speed'},
        h('thead', null, h('tr', null, ...['landing_lcp', 'sessions', 'conversion', 'bounce_rate']
          .map((key, i) => h('th', {scope: 'col', class: i ? 'num' : 'text'}, t(key))))),
        h('tbody', null, ...rows.map((/** @type {any} */ r) => h('tr', {class: r.too_small ? 'too-small' : '', dataset: {bucket: r.lcp_bucket_ms}},
          h('td', {class: 'text'}, bucketLabel(r.lcp_bucket_ms, f)),
          h('td', {class: 'num', dataset: {col: 'sessions', value: r.sessions}}, f.count(r.sessions), r.too_small ? h('span', {class: 'badge'}, t('too_small')) : ''),
          h('td', {class: 'num', dataset: {col: 'conversion_rate', value: r.conversion_rate}}, f.percent(r.conversion_rate)),
          h('td', {class: 'num', dataset: {col: 'bounce_rate', value: r.bounce_rate}}, f.percent(r.bounce_rate)))))))),
  ];
};
