// @ts-check
// Coercions that keep every value inside what the collector's strict beacon
// model accepts (collector/beacon.py): a value it would refuse is dropped
// here rather than costing the whole beacon a 400.

/**
 * A finite number rounded to `digits` decimals and clamped to [min, max];
 * `undefined` (left out of the JSON) for anything else, NaN included.
 * @param {unknown} x
 * @param {number} max
 * @param {number} [digits]
 * @param {number} [min]
 * @returns {number | undefined}
 */
export const num = (x, max, digits = 0, min = 0) =>
  typeof x == 'number' && isFinite(x)
    ? Math.min(max, Math.max(min, Math.round(x * 10 ** digits) / 10 ** digits))
    : undefined;

/**
 * A string of at most `max` UTF-16 units (so at most `max` code points on the
 * server). A surrogate pair cut in two, like a NUL, is replaced when the
 * beacon is serialized (payload.js).
 * @param {unknown} x
 * @param {number} max
 * @returns {string | undefined}
 */
export const str = (x, max) => (x == null ? undefined : String(x).slice(0, max));

/** The beacon's id alphabet is [A-Za-z0-9_-]; base 32 digits are a subset. */
export const ID_PATTERN = /^[\w-]{8,64}$/;

/**
 * 16 random base-32 digits (80 bits) from the browser's CSPRNG.
 * @returns {string}
 */
export const randomId = () => {
  let id = '';
  for (const byte of crypto.getRandomValues(new Uint8Array(16))) id += (byte & 31).toString(32);
  return id;
};

/**
 * 'none' | 'performance' | 'marketing' from what a page may pass, or undefined.
 * @param {unknown} level
 * @returns {Consent | undefined}
 */
export const consentLevel = (level) =>
  level === false || level === 'none' ? 'none' : level === 'performance' || level === 'marketing' ? level : undefined;

/** @typedef {'none' | 'performance' | 'marketing'} Consent */
