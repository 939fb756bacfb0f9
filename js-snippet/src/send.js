// @ts-check
// Delivery. sendBeacon with a string body sends text/plain: a CORS-safelisted
// request, so no preflight even to a collector on another origin. When the
// browser refuses it (over its keepalive quota) or lacks it, fetch with
// keepalive survives the page's unload the same way.

/**
 * Sends a beacon; `onLost` runs when neither sendBeacon nor fetch took it
 * (the snippet counts it and reports the count with its next beacon, issue 22).
 * A fetch that fails after the page is gone reports nothing: no page is left
 * to count it.
 * @param {string} endpoint
 * @param {string} body
 * @param {() => void} onLost
 */
export const send = (endpoint, body, onLost) => {
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
      // A string body is sent as text/plain;charset=UTF-8, as sendBeacon sends
      // it (Fetch standard, "extract a body"): CORS-safelisted, no preflight.
    }).catch(onLost);
  } catch (e) {
    onLost();
  }
};
