// @ts-check
// Page, device and navigation data, read when a beacon is built (never while
// the page loads). The readers take the objects they read as arguments so
// node can test them with plain stand-ins.
import {ID_PATTERN, num, randomId, str} from './clean.js';

const DAY = 864e5;
const SESSION_KEY = 'binome.sid';

/**
 * Device and network hints the browser offers (Network Information API and
 * Device Memory are Chromium-only: absent fields are left out).
 * @param {any} win a Window
 */
export const deviceHints = (win) => {
  const nav = win.navigator || {};
  const conn = nav.connection || {};
  return {
    vw: num(win.innerWidth, 1e5),
    vh: num(win.innerHeight, 1e5),
    dpr: num(win.devicePixelRatio, 100, 2),
    mem: num(nav.deviceMemory, 4096, 3),
    cpus: num(nav.hardwareConcurrency, 4096),
    ect: /^(slow-2g|[234]g)$/.test(conn.effectiveType) ? conn.effectiveType : undefined,
    rtt: num(conn.rtt, DAY),
    downlink: num(conn.downlink, 1e5, 3),
    save_data: conn.saveData,
  };
};

/**
 * The Navigation Timing breakdown of a PerformanceNavigationTiming entry, in
 * whole milliseconds relative to the navigation start.
 * @param {any} entry
 */
export const navTiming = (entry) => {
  if (!entry) return;
  /** @param {number} ms */
  const ms = (ms) => num(ms, DAY);
  return {
    type: /^(navigate|reload|back_forward|prerender)$/.test(entry.type) ? entry.type : undefined,
    dns: ms(entry.domainLookupEnd - entry.domainLookupStart),
    connect: ms(entry.connectEnd - entry.connectStart),
    tls: ms(entry.secureConnectionStart > 0 ? entry.connectEnd - entry.secureConnectionStart : 0),
    ttfb: ms(entry.responseStart),
    // 0 means "has not happened yet" (hidden before load): leave it out.
    dom_interactive: ms(entry.domInteractive) || undefined,
    dcl: ms(entry.domContentLoadedEventStart) || undefined,
    load: ms(entry.loadEventStart) || undefined,
    transfer_size: num(entry.transferSize, 1e12),
    protocol: str(entry.nextHopProtocol, 16) || undefined,
  };
};

/**
 * The session id, kept in sessionStorage: one tab, gone when it closes, never
 * shared across sites (no cookie, no localStorage). sessionStorage throws in
 * some privacy modes and sandboxed frames: then no sid, and the page view is
 * its own session.
 * @param {any} win a Window
 * @returns {string | undefined}
 */
export const sessionId = (win) => {
  try {
    const store = win.sessionStorage;
    let sid = store.getItem(SESSION_KEY);
    if (!ID_PATTERN.test(sid)) store.setItem(SESSION_KEY, (sid = randomId()));
    return sid;
  } catch (e) {
    // No storage (blocked, sandboxed): no sid, the page view is its own session.
  }
};

/**
 * Everything the payload needs from the live page.
 * @param {any} win a Window
 * @param {boolean} restored the page view began with a back/forward cache restore
 * @param {Partial<import('./payload.js').PageContext>} [page] what a page view
 *   begun by a route change, or ended by one, says of itself instead
 * @returns {import('./payload.js').PageContext}
 */
export const pageContext = (win, restored, page) => {
  const loc = page ? new URL(/** @type {string} */ (page.href)) : win.location;
  return {
    href: loc.href,
    path: loc.origin + loc.pathname,
    ref: win.document.referrer,
    sid: sessionId(win),
    device: deviceHints(win),
    // A restored page has no new navigation: its timing entry describes the
    // original load, so only the type is sent.
    nav: restored
      ? {type: 'back-forward-cache'}
      : navTiming(win.performance.getEntriesByType('navigation')[0]),
    ...page,
  };
};
