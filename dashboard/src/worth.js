// "What speed is worth", beside "what speed costs": the conversions and
// revenue of the last 28 days had the sessions landing on slow pages converted
// like those landing on fast ones, with its 95 % interval, for the site and
// per channel and campaign (rum.speed_worth), and the caveat in one line.
import {h} from './dom.js';
import {groupName} from './campaigns.js';
import {proofPlaceholder, signed} from './proof.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

/**
 * "16 (5 to 27)": an estimate, rounded as `write` does, with its interval when there is one.
 * @param {number|null} estimate @param {number|null} low @param {number|null} high
 * @param {(n: number) => string} write @param {T} t
 */
export const estimateText = (estimate, low, high, write, t) => {
  if (estimate == null) return '–';
  return low == null || high == null ? write(estimate) : `${write(estimate)} ${t('interval', {low: write(low), high: write(high)})}`;
};

/**
 * Extra conversions as a signed whole number, extra revenue as a signed amount.
 * @param {string} locale
 */
export const writers = (locale) => ({
  conversions: (/** @type {number} */ n) => signed(locale, n, 0),
  revenue: (/** @type {number} */ n) => signed(locale, n, 2),
});

/**
 * The sentence for the whole site.
 * @param {any} row rum.speed_worth's scope 'site' @param {any} data @param {Format} f @param {T} t @param {string} locale
 */
export const worthSentence = (row, data, f, t, locale) => {
  const w = writers(locale);
  const values = {
    slow: f.count(row.slow_sessions), threshold: f.threshold('lcp', data.thresholds.lcp[0]),
    fast_rate: f.percent(row.fast_conversion_rate), slow_rate: f.percent(row.slow_conversion_rate),
    conversions: estimateText(row.extra_conversions, row.extra_conversions_low, row.extra_conversions_high, w.conversions, t),
    revenue: estimateText(row.extra_revenue, row.extra_revenue_low, row.extra_revenue_high, w.revenue, t),
    currency: data.currency, // the site's (`binome site add --currency`)
  };
  if (row.extra_conversions == null) return t('no_worth');
  const sentence = t(row.extra_conversions > 0 ? 'worth_summary' : 'worth_nothing', values);
  // No revenue sentence where conversions carry no value (revenue 0) or no gain is claimed.
  return !row.revenue_per_conversion || row.extra_conversions <= 0 ? sentence : `${sentence} ${t('worth_revenue', values)}`;
};

/** @param {any} row @param {Format} f @param {T} t @param {string} locale */
const tableRow = (row, f, t, locale) => {
  const w = writers(locale);
  const name = row.scope === 'channel' || row.scope_value === '(none)' ? groupName(row.scope_value, t) : row.scope_value;
  return h('tr', {class: row.too_small ? 'too-small' : '', dataset: {scope: row.scope, value: row.scope_value}},
    h('th', {scope: 'row', class: 'text'}, name, h('span', {class: 'muted small block'}, t(`scope_${row.scope}`))),
    h('td', {class: 'num', dataset: {col: 'slow_sessions'}}, f.count(row.slow_sessions), ' / ', f.count(row.sessions),
      row.too_small ? h('span', {class: 'badge'}, t('too_small')) : ''),
    h('td', {class: 'num', dataset: {col: 'rates'}}, f.percent(row.fast_conversion_rate), ' / ', f.percent(row.slow_conversion_rate)),
    h('td', {class: 'num', dataset: {col: 'extra_conversions'}},
      estimateText(row.extra_conversions, row.extra_conversions_low, row.extra_conversions_high, w.conversions, t)),
    h('td', {class: 'num', dataset: {col: 'extra_revenue'}}, row.revenue_per_conversion
      ? estimateText(row.extra_revenue, row.extra_revenue_low, row.extra_revenue_high, w.revenue, t) : f.missing));
};

/**
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 * @returns {HTMLElement[]}
 */
export const renderWorth = (data, f, t, locale) => {
  const placeholder = data.speed_worth === null ? proofPlaceholder(data, t) : null;
  if (placeholder) return [placeholder];
  const rows = data.speed_worth || [];
  const site = rows.find((/** @type {any} */ r) => r.scope === 'site');
  if (!site) return [h('p', {class: 'muted'}, t('no_worth'))];
  return [
    h('p', {class: 'summary', dataset: {extra: site.extra_conversions}}, worthSentence(site, data, f, t, locale)),
    h('p', {class: 'caveat small'}, t('worth_caveat')),
    h('p', {class: 'muted small'}, t('worth_help', {from: site.first_day, to: site.last_day, min: data.too_small_page_views})),
    h('details', null, h('summary', null, t('worth_by_channel')),
      h('div', {class: 'table-scroll'}, h('table', {class: 'worth'},
        h('thead', null, h('tr', null, ...['scope', 'slow_sessions', 'fast_slow_rates', 'extra_conversions', 'extra_revenue']
          .map((key, i) => h('th', {scope: 'col', class: i ? 'num' : 'text'}, t(key), key === 'extra_revenue' ? ` (${data.currency})` : '')))),
        h('tbody', null, ...rows.filter((/** @type {any} */ r) => r.scope !== 'site').map((/** @type {any} */ r) => tableRow(r, f, t, locale)))))),
  ];
};
