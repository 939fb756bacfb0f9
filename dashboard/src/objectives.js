// The Objectives band (issue 21): each shared objective of the site as its
// last `binome objective check` stored it (rum.objective_results): its status
// in words, its value with its 95 % interval, its target, its value over the
// last 8 weeks, and when it was checked; an objective not checked yet says
// when it will be.
import {h} from './dom.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

const STATUS_KEYS = {met: 'objective_met', 'at risk': 'objective_at_risk', missed: 'objective_missed', 'too few': 'objective_too_few'};
const METRIC_KEYS = {lcp_p75: 'lcp_short', inp_p75: 'inp_short', cls_p75: 'cls_short', cwv_good_pct: 'cwv', conversion_rate: 'conversion'};
const SCOPE_KEYS = ['channel', 'utm_campaign', 'device_class', 'country', 'page_type'];
const SVG = 'http://www.w3.org/2000/svg';

/** @param {string} metric @param {number|null|undefined} value @param {Format} f */
export const objectiveValue = (metric, value, f) =>
  metric === 'lcp_p75' ? f.metric('lcp', value)
    : metric === 'inp_p75' ? f.metric('inp', value)
      : metric === 'cls_p75' ? f.cls(value) : f.percent(value);

/** A target as people write it: "2.5 s", "200 ms", "0.1", "75.0%". @param {string} metric @param {number} target @param {Format} f */
const targetText = (metric, target, f) =>
  metric.endsWith('_p75') ? f.threshold(/** @type {'lcp'|'inp'|'cls'} */ (metric.slice(0, 3)), target) : f.percent(target);

/** @param {Record<string, string|boolean>} scope @param {T} t */
const scopeText = (scope, t) => {
  const parts = SCOPE_KEYS.filter((key) => key in scope).map((key) => `${t(`scope_${key}`)} ${scope[key]}`);
  if (scope.landing) parts.push(t('scope_landing'));
  return parts.length ? parts.join(' · ') : t('scope_all');
};

/**
 * A sparkline of the weekly values (gaps where a week had none), newest on the right.
 * @param {{week_start: string, value: number|null, n: number}[]} weeks @param {number} target
 */
const sparkline = (weeks, target) => {
  const width = 120, height = 28, pad = 3;
  const values = weeks.map((w) => w.value).filter((v) => v != null);
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('aria-hidden', 'true');
  if (!values.length) return svg;
  const low = Math.min(target, ...values), high = Math.max(target, ...values);
  const x = (/** @type {number} */ i) => pad + (i * (width - 2 * pad)) / Math.max(weeks.length - 1, 1);
  const y = (/** @type {number} */ v) => (high === low ? height / 2 : height - pad - ((v - low) * (height - 2 * pad)) / (high - low));
  const line = (/** @type {string} */ cls, /** @type {string} */ points) => {
    const el = document.createElementNS(SVG, 'polyline');
    el.setAttribute('class', cls);
    el.setAttribute('points', points);
    svg.append(el);
  };
  line('target', `${pad},${y(target)} ${width - pad},${y(target)}`);
  /** @type {string[][]} */
  const runs = [[]];
  weeks.forEach((w, i) => {
    if (w.value == null) runs.push([]);
    else runs[runs.length - 1].push(`${x(i)},${y(w.value)}`);
  });
  for (const run of runs) {
    if (run.length > 1) line('values', run.join(' '));
    else if (run.length === 1) {
      const [cx, cy] = run[0].split(',');
      const dot = document.createElementNS(SVG, 'circle');
      dot.setAttribute('cx', cx);
      dot.setAttribute('cy', cy);
      dot.setAttribute('r', '2');
      svg.append(dot);
    }
  }
  return svg;
};

/**
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 * @returns {HTMLElement}
 */
export const renderObjectives = (data, f, t, locale) => {
  const objectives = data.objectives || [];
  const week = new Intl.DateTimeFormat(locale, {day: 'numeric', month: 'short', timeZone: 'UTC'});
  const clock = new Intl.DateTimeFormat(locale, {hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC'});
  const today = new Date().toISOString().slice(0, 10);
  /** "checked 14:05 UTC", with the day when it was not today (UTC). @param {string} at */
  const checked = (at) => {
    const when = new Date(at);
    const time = clock.format(when);
    return at.slice(0, 10) === today ? t('objective_checked', {time}) : t('objective_checked_on', {day: week.format(when), time});
  };
  const minutes = Number(data.objective_check_minutes) || 0;
  const items = objectives.map((/** @type {any} */ o) => {
    if (!o.checked_at) {
      return h('li', {class: 'objective status-pending', dataset: {objective: o.name, status: 'pending'}},
        h('span', {class: 'objective-status'}, t('objective_pending')),
        h('span', {class: 'objective-what'},
          h('strong', null, t(METRIC_KEYS[/** @type {keyof METRIC_KEYS} */ (o.metric)] || o.metric)),
          ' ', h('span', {class: 'muted small'}, scopeText(o.scope, t)),
          h('span', {class: 'muted small block objective-name'}, o.name)),
        h('span', {class: 'objective-checked muted small'},
          minutes > 0 ? t('objective_pending_within', {minutes: f.count(Math.ceil(minutes))}) : t('objective_pending_manual')),
        h('span', {class: 'objective-target num'}, t(o.at_most ? 'objective_at_most' : 'objective_at_least', {target: targetText(o.metric, o.target, f)})));
    }
    const shown = (/** @type {number|null} */ v) => objectiveValue(o.metric, v, f);
    const status = o.status || 'too few';
    const weeks = /** @type {{week_start: string, value: number|null, n: number}[]} */ (o.weeks);
    return h('li', {class: `objective status-${status.replace(' ', '-')}`, dataset: {objective: o.name, status}},
      h('span', {class: 'objective-status'}, t(STATUS_KEYS[/** @type {keyof STATUS_KEYS} */ (status)] || 'objective_too_few')),
      h('span', {class: 'objective-what'},
        h('strong', null, t(METRIC_KEYS[/** @type {keyof METRIC_KEYS} */ (o.metric)] || o.metric)),
        ' ', h('span', {class: 'muted small'}, scopeText(o.scope, t)),
        h('span', {class: 'muted small block objective-name'}, o.name)),
      h('span', {class: 'objective-value num', dataset: {value: o.value}},
        shown(o.value),
        o.value_low != null
          ? h('span', {class: 'muted small block objective-interval'}, t('objective_interval', {low: shown(o.value_low), high: shown(o.value_high)}))
          : h('span', {class: 'muted small block'}, t('objective_n', {n: f.count(o.n)}))),
      h('span', {class: 'objective-target num'}, t(o.at_most ? 'objective_at_most' : 'objective_at_least', {target: targetText(o.metric, o.target, f)})),
      h('span', {class: 'objective-trend', title: weeks.map((w) => `${week.format(new Date(w.week_start))}: ${shown(w.value)}`).join('\n'),
        dataset: {weeks: weeks.map((w) => (w.value == null ? '' : String(w.value))).join(' ')}},
      sparkline(weeks, o.target), h('span', {class: 'muted small block'}, t('objective_weeks')),
      h('span', {class: 'muted small block objective-checked', dataset: {checkedAt: o.checked_at}}, checked(o.checked_at))));
  });
  return h('section', {class: 'card', id: 'objectives'}, h('h2', null, t('objectives')),
    ...(objectives.length
      ? [h('ul', {class: 'objectives'}, ...items), h('p', {class: 'muted small'}, t('objectives_help'))]
      : [h('p', {class: 'muted small'}, t('no_objectives'))]));
};
