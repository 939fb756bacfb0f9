// @ts-check
// Delivery. sendBeacon with a string body sends text/plain: a CORS-safelisted
// request, so no preflight even to a collector on another origin. When the
// browser refuses it (over its keepalive quota) or lacks it, fetch with
// keepalive survives the page's unload the same way.

/**
 * @param {string} endpoint
 * @param {string} body
 */
export const send = (endpoint, body) => {
  try {
    if (navigator.sendBeacon(endpoint, body)) return;
  } catch (e) {
    // No sendBeacon (or it threw on a bad URL): fall back to fetch.
  }
  try {
    fetch(endpoint, {
      method: 'POST',
      body,
      keepalive: true,
      credentials: 'omit',
      headers: {'Content-Type': 'text/plain'},
    }).catch(() => {});
  } catch (e) {
    // No fetch either: the beacon is lost, the page is not.
  }
};
