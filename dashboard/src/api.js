// The page's state lives in its URL (?site=&from=&to=&device_class=&country=),
// so a view can be bookmarked and shared. The token never is: signing in trades
// it for an HttpOnly cookie (collector/access.py), which the page's requests
// carry (credentials: 'same-origin').

export const FILTER_KEYS = /** @type {const} */ (['site', 'from', 'to', 'device_class', 'country']);

/** @typedef {{site?: string, from?: string, to?: string, device_class?: string, country?: string}} Filters */

/** @param {string} search location.search @returns {Filters} */
export const filtersFromSearch = (search) => {
  const params = new URLSearchParams(search);
  /** @type {Record<string, string>} */
  const filters = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) filters[key] = value;
  }
  return filters;
};

/** The page's URL for these filters, keeping anything else. @param {string} href @param {Filters} filters */
export const hrefFor = (href, filters) => {
  const url = new URL(href);
  for (const key of FILTER_KEYS) {
    const value = /** @type {Record<string, string|undefined>} */ (filters)[key];
    if (value) url.searchParams.set(key, value);
    else url.searchParams.delete(key);
  }
  return url.toString();
};

/** A refusal of the data endpoint: its status, and its detail when it gave one (in English). */
export class DataError extends Error {
  /** @param {number} status @param {string|null} detail */
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/**
 * GET dashboard/data (relative to the page, so a collector behind a path prefix works).
 * @param {Filters} filters @param {string} pageHref
 */
export const fetchScorecard = async (filters, pageHref) => {
  const page = new URL(pageHref);
  const url = new URL('dashboard/data', page);
  for (const [key, value] of Object.entries(filters)) if (value) url.searchParams.set(key, value);
  const response = await fetch(url, {
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (!response.ok) {
    let detail = null;
    try {
      const body = await response.json();
      detail = body.detail || body.error || null;
    } catch { /* not JSON */ }
    throw new DataError(response.status, detail);
  }
  return response.json();
};
