// A trend chart per metric: the daily p75 over the period on the CrUX bands
// (green up to "good", amber up to "poor", red above), with a dashed line
// where each release was first seen.
import uPlot from 'uplot';
import {h} from './dom.js';
import {COLOURS} from './format.js';

/** @typedef {ReturnType<typeof import('./format.js').formatter>} Format */
/** @typedef {(key: string, values?: Record<string, string|number>) => string} T */

const DAY = 86400;
const utc = (/** @type {number} */ ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');

/** Tinted CrUX bands behind the series. @param {[number, number]} thresholds */
const bands = (thresholds) => (/** @type {uPlot} */ u) => {
  const {ctx, bbox} = u;
  const [good, poor] = thresholds;
  const top = bbox.top;
  const bottom = bbox.top + bbox.height;
  const y = (/** @type {number} */ v) => Math.min(bottom, Math.max(top, u.valToPos(v, 'y', true)));
  ctx.save();
  ctx.globalAlpha = 0.1;
  ctx.fillStyle = COLOURS.good;
  ctx.fillRect(bbox.left, y(good), bbox.width, bottom - y(good));
  ctx.fillStyle = COLOURS.ni;
  ctx.fillRect(bbox.left, y(poor), bbox.width, y(good) - y(poor));
  ctx.fillStyle = COLOURS.poor;
  ctx.fillRect(bbox.left, top, bbox.width, y(poor) - top);
  ctx.restore();
};

/** Dashed verticals at releases' first_seen, labelled. @param {{release: string, day: string, at: number}[]} marks */
const releaseMarks = (marks) => (/** @type {uPlot} */ u) => {
  const {ctx, bbox} = u;
  ctx.save();
  ctx.strokeStyle = '#5b4bb7';
  ctx.fillStyle = '#5b4bb7';
  ctx.lineWidth = Math.max(1, devicePixelRatio);
  ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
  ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  for (const {release, at} of marks) {
    const x = Math.round(u.valToPos(at, 'x', true));
    if (x < bbox.left || x > bbox.left + bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    const width = ctx.measureText(release).width;
    const textX = x + 3 * devicePixelRatio + width > bbox.left + bbox.width ? x - 3 * devicePixelRatio - width : x + 3 * devicePixelRatio;
    ctx.fillText(release, textX, bbox.top + 2 * devicePixelRatio);
  }
  ctx.restore();
};

/** Axis ticks: whole seconds for LCP, ms for INP, two decimals for CLS. @param {'lcp'|'inp'|'cls'} metric @param {number} value @param {Format} f */
const tick = (metric, value, f) =>
  metric === 'lcp' ? `${f.number(value / 1000, 1)}\u00a0s` : metric === 'inp' ? `${f.number(value, 0)}\u00a0ms` : f.number(value, 2);

/**
 * @param {HTMLElement} holder
 * @param {{metric: 'lcp'|'inp'|'cls', days: any[], thresholds: [number, number], marks: {release: string, day: string, at: number}[], f: Format, t: T, locale: string}} options
 */
const chart = (holder, {metric, days, thresholds, marks, f, t, locale}) => {
  const xs = days.map((d) => Date.parse(d.day) / 1000);
  const ys = days.map((d) => d[`${metric}_p75`] ?? null);
  const highest = Math.max(thresholds[1], ...ys.filter((v) => v != null));
  const dateLabel = new Intl.DateTimeFormat(locale, {day: 'numeric', month: 'short', timeZone: 'UTC'});
  const width = () => Math.max(260, holder.clientWidth);
  const plot = new uPlot({
    width: width(),
    height: 210,
    tzDate: utc,
    legend: {show: false},
    cursor: {y: false, points: {size: 7}},
    scales: {x: {time: true, range: [xs[0] - DAY / 2, xs[xs.length - 1] + DAY / 2]}, y: {range: [0, highest * 1.12]}},
    axes: [
      {values: (_u, splits) => splits.map((s) => dateLabel.format(new Date(s * 1e3))), space: 70, gap: 4, size: 30, font: '11px system-ui, sans-serif'},
      {values: (_u, splits) => splits.map((s) => tick(metric, s, f)), size: 58, gap: 4, font: '11px system-ui, sans-serif'},
    ],
    series: [
      {},
      {label: `${t(`${metric}_short`)} p75`, stroke: '#1f2a44', width: 2, spanGaps: false,
        points: {show: true, size: 5, stroke: '#1f2a44', fill: '#fff'}, value: (_u, v) => f.metric(metric, v)},
    ],
    hooks: {drawClear: [bands(thresholds)], draw: [releaseMarks(marks)]},
  }, [xs, ys], holder);
  new ResizeObserver(() => {
    if (Math.abs(plot.width - width()) > 2) plot.setSize({width: width(), height: 210});
  }).observe(holder);
  return plot;
};

/**
 * @param {any} data @param {Format} f @param {T} t @param {string} locale
 * @returns {HTMLElement[]}
 */
export const renderTrends = (data, f, t, locale) => {
  const from = Date.parse(data.filters.from) / 1000;
  const to = Date.parse(data.filters.to) / 1000 + DAY;
  const marks = data.releases
    .map((/** @type {any} */ r) => ({release: r.release, day: r.first_seen.slice(0, 10), at: Date.parse(r.first_seen) / 1000}))
    .filter((/** @type {{at: number}} */ m) => m.at >= from && m.at < to);
  // The marks drawn, as data: the canvas alone would not say where they are.
  const shown = JSON.stringify(marks.map((/** @type {{release: string, day: string}} */ m) => ({release: m.release, first_seen: m.day})));
  return (/** @type {const} */ (['lcp', 'inp', 'cls'])).map((metric) => {
    const holder = h('div', {class: 'chart'});
    const figure = h('figure', {class: 'trend', dataset: {trend: metric, marks: shown}},
      h('figcaption', {title: t('p75_help')}, t(metric), ' ', h('span', {class: 'muted'}, 'p75')), holder);
    // uPlot measures its holder: draw once the figure is in the page.
    requestAnimationFrame(() => chart(holder, {metric, days: data.period.trend, thresholds: data.thresholds[metric], marks, f, t, locale}));
    return figure;
  });
};
