// @ts-check
// Reads the embedding script tag (README, "Embedding the snippet"): the only DOM read the
// snippet does while the page loads.
import {consentLevel, str} from './clean.js';

/**
 * @typedef {object} Config
 * @property {string} site
 * @property {string} endpoint
 * @property {string | undefined} release
 * @property {number} sample
 * @property {import('./clean.js').Consent} consent
 * @property {string | undefined} spa data-spa: 'on' (absent), 'hash' or 'off'
 * @property {string | undefined} debug data-debug: present ('' or any value) logs
 *   the beacons and their answers to the console (send.js)
 */

/**
 * The script's data-* attributes, or undefined when the tag or its site is
 * missing (then the snippet stays inert).
 * @param {Document} doc
 * @returns {Config | undefined}
 */
export const readConfig = (doc) => {
  // currentScript is set while a classic script runs, async ones included;
  // the selector covers scripts injected by a tag manager.
  const script = /** @type {HTMLScriptElement | null} */ (
    doc.currentScript || doc.querySelector('script[data-site][src*="binome"]')
  );
  const data = script?.dataset;
  if (!data || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(data.site || '')) return;
  const sample = parseFloat(data.sample ?? '1');
  // The attributes as given (site, spa, debug ...), those that need it cleaned.
  return /** @type {Config} */ ({
    ...data,
    endpoint: data.endpoint || new URL('/beacon', script.src).href,
    release: str(data.release, 64),
    sample: sample >= 0 ? sample : 1,
    consent: consentLevel(data.consent) || 'performance',
  });
};
