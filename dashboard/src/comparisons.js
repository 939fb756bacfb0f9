// "How sure is a difference": the last 7 complete days against the 7 before
// them, and each A/B variant against A (else control) over 28 days, each
// metric's difference with its interval and verdict (rum.comparisons, every
// device and country of the site).
import {h} from './dom.js';
import {METRICS, comparisonsOf, proofPlaceholder, renderDifference} from './proof.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */
/** @typedef {import('./proof.js').Comparison} Comparison */

/** @param {string} day YYYY-MM-DD @param {number} days */
const plusDays = (day, days) => new Date(Date.parse(day) + days * 86400e3).toISOString().slice(0, 10);

/** A side's value as the page writes it. @param {'lcp'|'inp'|'cls'|'pct'} kind @param {number|null} value @param {Format} f */
const value = (kind, value, f) => (kind === 'pct' ? f.percent(value) : f.metric(kind, value));

/**
 * The week against the one before: one row per metric.
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 */
const renderPeriod = (data, f, t, locale) => {
  const rows = /** @type {Comparison[]} */ ((data.comparisons || []).filter((/** @type {Comparison} */ c) => c.kind === 'period'));
  if (!rows.length) return h('p', {class: 'muted'}, t('no_period_comparison'));
  const {subject, baseline} = rows[0];
  const compared = comparisonsOf(rows, 'period', subject);
  return h('div', {id: 'period-comparison'},
    h('h3', null, t('period_comparison', {from: subject, to: plusDays(subject, 6), before_from: baseline, before_to: plusDays(baseline, 6)})),
    h('div', {class: 'table-scroll'}, h('table', {class: 'comparisons'},
      h('thead', null, h('tr', null, ...['metric', 'last_7_days', 'previous_7_days', 'difference']
        .map((key, i) => h('th', {scope: 'col', class: i ? 'num' : 'text'}, t(key))))),
      h('tbody', null, ...METRICS.filter(([metric]) => compared.has(metric)).map(([metric, kind, label]) => {
        const c = /** @type {Comparison} */ (compared.get(metric));
        return h('tr', {dataset: {metric}},
          h('th', {scope: 'row', class: 'text'}, t(label)),
          h('td', {class: 'num', dataset: {col: 'subject_value'}}, value(kind, c.subject_value, f),
            h('span', {class: 'muted small block'}, f.count(c.subject_n))),
          h('td', {class: 'num', dataset: {col: 'baseline_value'}}, value(kind, c.baseline_value, f),
            h('span', {class: 'muted small block'}, f.count(c.baseline_n))),
          h('td', {class: 'num', dataset: {col: 'difference'}}, renderDifference(c, data.too_small_page_views, f, t, locale)));
      })))));
};

/**
 * Each A/B variant against its baseline: one row per variant, a column per metric.
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 */
const renderVariants = (data, f, t, locale) => {
  const rows = /** @type {Comparison[]} */ ((data.comparisons || []).filter((/** @type {Comparison} */ c) => c.kind === 'ab_variant'));
  const variants = [...new Set(rows.map((c) => c.subject))].sort();
  if (!variants.length) return h('p', {class: 'muted', id: 'ab-variants'}, t('no_ab_variants'));
  return h('div', {id: 'ab-variants'},
    h('h3', null, t('ab_variants')),
    h('div', {class: 'table-scroll'}, h('table', {class: 'comparisons'},
      h('thead', null, h('tr', null, h('th', {scope: 'col', class: 'text'}, t('variant')),
        ...METRICS.map(([, , label]) => h('th', {scope: 'col', class: 'num'}, t(label))))),
      h('tbody', null, ...variants.map((variant) => {
        const compared = comparisonsOf(rows, 'ab_variant', variant);
        const baseline = compared.values().next().value?.baseline;
        return h('tr', {dataset: {variant}},
          h('th', {scope: 'row', class: 'text'}, variant, h('span', {class: 'muted small block'}, t('previous_release', {release: baseline || ''}))),
          ...METRICS.map(([metric]) => h('td', {class: 'num', dataset: {col: metric}},
            renderDifference(compared.get(metric), data.too_small_page_views, f, t, locale))));
      })))));
};

/**
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 * @returns {HTMLElement[]}
 */
export const renderComparisons = (data, f, t, locale) => {
  const placeholder = proofPlaceholder(data, t);
  return placeholder ? [placeholder] : [
    h('p', {class: 'muted small'}, t('comparisons_help', {min: data.too_small_page_views})),
    renderPeriod(data, f, t, locale),
    renderVariants(data, f, t, locale),
  ];
};
