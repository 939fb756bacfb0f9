// The shared scorecard page: reads the filters from the URL, asks the
// collector's dashboard/data for the figures and draws every section.
// body[data-state] is loading, ready or error (the browser tests wait on it).
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';
import {DataError, fetchScorecard, filtersFromSearch, hrefFor} from './api.js';
import {byId, fill, h} from './dom.js';
import {consentShare, daysBetween, formatter, lastDays} from './format.js';
import {pickLanguage, translator} from './i18n.js';
import {renderCampaigns} from './campaigns.js';
import {renderComparisons} from './comparisons.js';
import {renderObjectives} from './objectives.js';
import {followProof} from './proof.js';
import {renderRejections} from './rejections.js';
import {renderReleases} from './releases.js';
import {renderSpeed} from './speed.js';
import {renderTiles} from './tiles.js';
import {renderTrends} from './trends.js';
import {renderWorth} from './worth.js';

const PRESETS = [7, 14, 28, 90];

const {lang, locale} = pickLanguage(navigator.languages?.length ? navigator.languages : [navigator.language || 'en-US']);
const t = translator(lang);
const f = formatter(locale);
document.documentElement.lang = lang;
document.title = `${t('title')} · Binome`;
for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n || '');

/** @type {import('./api.js').Filters} */
let filters = filtersFromSearch(location.search);
let generation = 0;

/** @param {HTMLSelectElement} select @param {[string, string][]} options @param {string} chosen */
const options = (select, options, chosen) => {
  fill(select, ...options.map(([value, label]) => h('option', {value, selected: value === chosen}, label)));
};

/** @param {any} data */
const drawFilters = (data) => {
  const chosen = data.filters;
  options(/** @type {HTMLSelectElement} */ (byId('site')), data.sites.map((/** @type {string} */ s) => [s, s]), chosen.site || '');
  const today = new Date();
  const preset = PRESETS.find((days) => {
    const last = lastDays(today, days);
    return last.from === chosen.from && last.to === chosen.to;
  });
  options(/** @type {HTMLSelectElement} */ (byId('period')),
    [...PRESETS.map((days) => [String(days), t(`last${days}`)]), ['custom', t('custom')]],
    preset ? String(preset) : 'custom');
  /** @type {HTMLInputElement} */ (byId('from')).value = chosen.from;
  /** @type {HTMLInputElement} */ (byId('to')).value = chosen.to;
  /** @param {string[]} values @param {string|null} current */
  const list = (values, current) => {
    const all = current && !values.includes(current) ? [...values, current] : values;
    return [['', t('all')], ...all.map((v) => [v, v === '(none)' ? t('none') : v])];
  };
  const period = data.period || {device_classes: [], countries: []};
  options(/** @type {HTMLSelectElement} */ (byId('device_class')), /** @type {[string, string][]} */ (list(period.device_classes, chosen.device_class)), chosen.device_class || '');
  options(/** @type {HTMLSelectElement} */ (byId('country')), /** @type {[string, string][]} */ (list(period.countries, chosen.country)), chosen.country || '');
};

/** @param {any} data */
const draw = (data) => {
  drawFilters(data);
  // The thresholds are the collector's (collector/indicators.py), sent with the figures.
  const good = (/** @type {'lcp'|'inp'|'cls'} */ metric) => f.threshold(metric, data.thresholds[metric][0]);
  byId('footer').textContent = t('footer', {good: t('footer_good', {lcp: good('lcp'), inp: good('inp'), cls: good('cls')})});
  const main = byId('figures');
  fill(byId('alerts'), renderRejections(data, f, t));
  if (!data.filters.site) {
    fill(main, h('p', {class: 'empty'}, t('no_site')));
    return;
  }
  const now = data.period.current;
  const share = consentShare(now);
  // The releases' figures span each release's whole life, not the period: their
  // consented share is the site's over all time (as for "what speed costs").
  const allTimeShare = consentShare(data.all_time);
  const days = daysBetween(data.filters.from, data.filters.to);
  byId('period-label').textContent = `${data.filters.site} · ${data.filters.from} → ${data.filters.to} (${t('days_short', {days})})`;
  fill(main,
    renderObjectives(data, f, t, locale),
    h('p', {class: 'notice consent', id: 'consent-notice', dataset: {consentShare: share}},
      t('consent_notice', {share: f.percent(share)})),
    now.page_views ? '' : h('p', {class: 'empty'}, t('no_data')),
    h('div', {class: 'tiles', id: 'tiles'}, ...renderTiles(data, f, t)),
    h('section', {class: 'card', id: 'trends'}, h('h2', null, t('trends')),
      h('div', {class: 'trend-grid'}, ...renderTrends(data, f, t, locale))),
    h('section', {class: 'card marketing', id: 'campaigns'}, h('h2', null, t('campaigns')),
      h('p', {class: 'muted small'}, t('campaigns_help', {min: data.too_small_page_views})),
      h('p', {class: 'consent small'}, t('consent_notice', {share: f.percent(share)})),
      renderCampaigns(data, f, t)),
    h('div', {class: 'pair'},
      h('section', {class: 'card marketing', id: 'speed'}, h('h2', null, t('speed')), ...renderSpeed(data, f, t)),
      h('section', {class: 'card marketing', id: 'speed-worth'}, h('h2', null, t('speed_worth')), ...renderWorth(data, f, t, locale))),
    h('section', {class: 'card', id: 'releases'}, h('h2', null, t('releases')),
      h('p', {class: 'muted small'}, t('releases_help')),
      renderReleases(data, f, t, locale),
      h('p', {class: 'consent small', dataset: {consentShare: allTimeShare}}, '* ', t('consent_all_time', {share: f.percent(allTimeShare)}))),
    h('section', {class: 'card', id: 'comparisons'}, h('h2', null, t('comparisons')), ...renderComparisons(data, f, t, locale)));
};

const load = async () => {
  const mine = ++generation;
  document.body.dataset.state = 'loading';
  byId('status').textContent = t('loading');
  try {
    const data = await fetchScorecard(filters, location.href);
    if (mine !== generation) return; // a newer choice is on its way
    draw(data);
    byId('status').textContent = '';
    document.body.dataset.state = 'ready';
    followProof(data, location.href, () => mine === generation, draw);
  } catch (error) {
    if (mine !== generation) return;
    // The endpoint's detail is its own (English); a bare status is worded here.
    const reason = error instanceof DataError ? error.detail || t('http_status', {status: error.status}) : /** @type {Error} */ (error).message;
    byId('status').textContent = t('error', {reason});
    document.body.dataset.state = 'error';
  }
};

/** @param {import('./api.js').Filters} next */
const choose = (next) => {
  filters = Object.fromEntries(Object.entries(next).filter(([, v]) => v));
  history.replaceState(null, '', hrefFor(location.href, filters));
  load();
};

byId('filters').addEventListener('change', (event) => {
  const target = /** @type {HTMLInputElement} */ (event.target);
  const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (byId(id)).value;
  const next = {site: value('site'), from: value('from'), to: value('to'), device_class: value('device_class'), country: value('country')};
  if (target.id === 'period' && target.value !== 'custom') Object.assign(next, lastDays(new Date(), Number(target.value)));
  if (target.id === 'site') Object.assign(next, {device_class: '', country: ''});
  choose(next);
});

load();
byId('filters').addEventListener('submit', (event) => event.preventDefault());
