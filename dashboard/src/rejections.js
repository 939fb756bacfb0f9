// Issue 24: a banner when beacons were refused in the last hour, with the
// command that fixes each set-up mistake. Site names and origins are what
// clients sent: shown as text only (h() appends text nodes, never HTML).
import {h} from './dom.js';

// What `binome site add --origin` takes; a header that is no origin (cut, junk) gets no command.
const ORIGIN = /^https?:\/\/[\w.-]*\w(:\d+)?$/;

/** The command that lets a refused kind in, by reason ('' when none does).
 * @type {Record<string, (r: any) => string>} */
const FIXES = {
  origin_not_allowed: (r) => (ORIGIN.test(r.origin) ? `binome site add ${r.site} --origin ${r.origin}` : ''),
  unknown_site: (r) => `binome site add ${r.site}`,
};

/**
 * @param {any} data @param {any} f @param {(key: string, values?: Record<string, string|number>) => string} t
 * @returns {HTMLElement|string}
 */
export const renderRejections = (data, f, t) => {
  const rows = data.rejections || [];
  if (!rows.length) return '';
  return h('section', {class: 'notice refused', id: 'rejections', role: 'alert'},
    h('strong', null, t('refused_title')),
    h('ul', null, ...rows.map((/** @type {any} */ r) => {
      const known = FIXES[r.reason];
      const fix = known ? known(r) : '';
      const values = {count: f.count(r.refused), origin: r.origin, site: r.site, reason: r.reason};
      return h('li', {dataset: {reason: r.reason}},
        t(`refused_${known ? r.reason : 'other'}${r.refused == 1 ? '_one' : ''}`, values),
        fix && ' — ', fix && h('code', null, fix));
    })));
};
