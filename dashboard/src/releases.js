// Release comparison: each release seen in the period beside the one before it,
// each difference with its interval and verdict (rum.comparisons).
import {h} from './dom.js';
import {COLOURS, rating} from './format.js';
import {comparisonsOf, renderDifference} from './proof.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

/**
 * A figure with its difference from the previous release, its 95 % interval
 * and the verdict (rum.comparisons), never a bare change.
 * @param {'lcp'|'inp'|'cls'|'pct'} kind @param {number|null} value
 * @param {import('./proof.js').Comparison|undefined} comparison
 * @param {any} data @param {Format} f @param {T} t @param {string} locale @param {string} key
 */
const figure = (kind, value, comparison, data, f, t, locale, key) => {
  const rated = kind === 'pct' ? null : rating(value, data.thresholds[kind]);
  const shown = kind === 'pct' ? f.percent(value) : f.metric(kind, value);
  const difference = renderDifference(comparison, data.too_small_page_views, f, t, locale);
  return h('td', {class: `num ${rated || ''}`, dataset: {col: key, value}},
    rated ? h('i', {class: 'dot', style: {background: COLOURS[rated]}}) : '',
    h('span', {style: rated ? {color: COLOURS[`${rated}Text`]} : {}}, shown), difference ? h('br') : '', difference);
};

/**
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 * @returns {HTMLElement}
 */
export const renderReleases = (data, f, t, locale) => {
  if (!data.releases.length) return h('p', {class: 'muted'}, t('no_releases'));
  const when = new Intl.DateTimeFormat(locale, {day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC'});
  const rows = data.releases.map((/** @type {any} */ r) => {
    const before = r.previous; // the release first seen before it, maybe before the period
    const compared = comparisonsOf(data.comparisons, 'release', r.release);
    return h('tr', {class: r.too_small ? 'too-small' : '', dataset: {release: r.release}},
      h('th', {scope: 'row', class: 'text'}, r.release,
        h('span', {class: 'muted small block'}, before ? t('previous_release', {release: before.release}) : t('first_release')),
        h('span', {class: 'muted small block', dataset: {col: 'first_seen'}}, `${t('first_seen')} ${when.format(new Date(r.first_seen))} UTC`)),
      h('td', {class: 'num', dataset: {col: 'page_views', value: r.page_views}}, f.count(r.page_views),
        r.too_small ? h('span', {class: 'badge'}, t('too_small')) : ''),
      figure('lcp', r.lcp_p75, compared.get('lcp_p75'), data, f, t, locale, 'lcp_p75'),
      figure('inp', r.inp_p75, compared.get('inp_p75'), data, f, t, locale, 'inp_p75'),
      figure('cls', r.cls_p75, compared.get('cls_p75'), data, f, t, locale, 'cls_p75'),
      figure('pct', r.cwv_good_pct, compared.get('cwv_good_pct'), data, f, t, locale, 'cwv_good_pct'),
      figure('pct', r.conversion_rate, compared.get('conversion_rate'), data, f, t, locale, 'conversion_rate'));
  });
  return h('div', {class: 'table-scroll'}, h('table', {class: 'releases'},
    h('thead', null, h('tr', null, ...['release', 'page_views', 'lcp_short', 'inp_short', 'cls_short', 'cwv', 'conversion']
      .map((key, i) => h('th', {scope: 'col', class: i < 1 ? 'text' : 'num'}, t(key), key === 'conversion' ? '*' : '')))),
    h('tbody', null, ...rows)));
};
