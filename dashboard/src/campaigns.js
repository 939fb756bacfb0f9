// The campaign table: per channel and campaign of the session's landing page,
// sortable by any column; groups too small to read (too_small) are greyed, with their size.
import {h, fill} from './dom.js';
import {COLOURS, rating} from './format.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

/** @type {{key: string, kind: 'text'|'count'|'lcp'|'inp'|'cls'|'pct'|'money', label: string}[]} */
const COLUMNS = [
  {key: 'channel', kind: 'text', label: 'channel'},
  {key: 'utm_campaign', kind: 'text', label: 'campaign'},
  {key: 'page_views', kind: 'count', label: 'page_views'},
  {key: 'lcp_p75', kind: 'lcp', label: 'lcp_short'},
  {key: 'inp_p75', kind: 'inp', label: 'inp_short'},
  {key: 'cls_p75', kind: 'cls', label: 'cls_short'},
  {key: 'cwv_good_pct', kind: 'pct', label: 'cwv'},
  {key: 'conversion_rate', kind: 'pct', label: 'conversion'},
  {key: 'revenue', kind: 'money', label: 'revenue'},
];

/** Names the grouped views use for absent or unconsented values, in the page's language. @param {string} value @param {T} t */
export const groupName = (value, t) => {
  if (value === '(none)') return t('none');
  if (value === '(no consent)') return t('no_consent');
  const label = t(`channel_${value}`);
  return label === `channel_${value}` ? value : label;
};

/**
 * @param {any} row @param {typeof COLUMNS[number]} column @param {any} data @param {Format} f @param {T} t
 */
const cell = (row, column, data, f, t) => {
  const value = row[column.key];
  if (column.kind === 'text') return h('td', {class: 'text', dataset: {col: column.key}}, groupName(value, t));
  /** @type {Record<string, any>} */
  const attrs = {class: 'num', dataset: {col: column.key, value}};
  if (column.kind === 'count') {
    return h('td', attrs, f.count(value), row.too_small ? h('span', {class: 'badge'}, t('too_small')) : '');
  }
  if (column.kind === 'lcp' || column.kind === 'inp' || column.kind === 'cls') {
    const rated = rating(value, data.thresholds[column.kind]);
    if (rated && !row.too_small) attrs.style = {color: COLOURS[`${rated}Text`]};
    if (rated) attrs.class += ` ${rated}`;
    return h('td', attrs, rated ? h('i', {class: 'dot', style: {background: COLOURS[rated]}}) : '', f.metric(column.kind, value));
  }
  return h('td', attrs, column.kind === 'money' ? f.money(value) : f.percent(value));
};

/** @param {any} a @param {any} b */
const compare = (a, b) => {
  if (a == null || b == null) return a == null ? (b == null ? 0 : 1) : -1; // missing last
  return typeof a === 'string' ? a.localeCompare(b) : a - b;
};

/**
 * @param {any} data @param {Format} f @param {T} t
 * @returns {HTMLElement}
 */
export const renderCampaigns = (data, f, t) => {
  const rows = [...data.period.campaigns];
  let sort = {key: 'page_views', descending: true};
  const body = h('tbody');
  const headers = COLUMNS.map((column) => h('th', {scope: 'col', class: column.kind === 'text' ? 'text' : 'num', dataset: {sort: column.key},
    title: column.key.endsWith('_p75') ? t('p75_help') : null},
    h('button', {type: 'button', onclick: () => {
      sort = {key: column.key, descending: sort.key === column.key ? !sort.descending : column.kind !== 'text'};
      draw();
    }}, t(column.label), column.kind === 'money' ? ` (${data.currency})` : '')));
  const draw = () => {
    rows.sort((a, b) => {
      const order = compare(a[sort.key], b[sort.key]);
      // Missing values stay last whichever the direction.
      if (a[sort.key] == null || b[sort.key] == null) return order;
      return (sort.descending ? -order : order) || b.page_views - a.page_views;
    });
    headers.forEach((th, i) => {
      th.setAttribute('aria-sort', COLUMNS[i].key === sort.key ? (sort.descending ? 'descending' : 'ascending') : 'none');
    });
    fill(body, ...rows.map((row) => h('tr', {class: row.too_small ? 'too-small' : '', dataset: {channel: row.channel, campaign: row.utm_campaign},
      title: row.too_small ? `${t('too_small')}: ${t('page_views_n', {n: f.count(row.page_views)})}` : null},
    ...COLUMNS.map((column) => cell(row, column, data, f, t)))));
  };
  draw();
  return h('div', {class: 'table-scroll'},
    h('table', {class: 'campaigns', id: 'campaign-table'}, h('thead', null, h('tr', null, ...headers)), body));
};
