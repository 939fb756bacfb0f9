// @ts-check
// Delivery. sendBeacon with a string body sends text/plain: a CORS-safelisted
// request, so no preflight even to a collector on another origin. When the
// browser refuses it (over its keepalive quota) or lacks it, fetch with
// keepalive survives the page's unload the same way.

/**
 * Sends a beacon; `onLost` runs when neither sendBeacon nor fetch took it
 * (the snippet counts it and reports the count with its next beacon, issue 22).
 * A fetch that fails after the page is gone reports nothing: no page is left
 * to count it. With `debug` (data-debug, issue 24) it goes by fetch, whose
 * answer a page can read (sendBeacon's it cannot), and logs the beacon with the
 * answer's status and body (the collector's {"error", "detail"}) once it comes;
 * a fetch that fails, the browser reports in the console itself.
 * @param {string} endpoint
 * @param {string} body
 * @param {() => void} onLost
 * @param {boolean} [debug]
 */
export const send = (endpoint, body, onLost, debug) => {
  try {
    if (!debug && navigator.sendBeacon(endpoint, body)) return;
  } catch (e) {
    // No sendBeacon (or it threw on a bad URL): fall back to fetch.
  }
  try {
    fetch(endpoint, {
      method: 'POST',
      body,
      keepalive: true,
      credentials: 'omit',
      // A string body is sent as text/plain;charset=UTF-8, as sendBeacon sends
      // it (Fetch standard, "extract a body"): CORS-safelisted, no preflight.
    }).then(
      // Without debug, `false`: then() ignores it (a fulfilled fetch is all it needs).
      /** @type {any} */ (debug && ((/** @type {Response} */ r) => r.text().then((text) => console.log('binome', body, r.status, text)))),
      onLost,
    );
  } catch (e) {
    onLost();
  }
};
