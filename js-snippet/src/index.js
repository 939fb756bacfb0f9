// @ts-check
// Wiring: read the script tag, take the page's queued commands, listen to
// web-vitals, and send when the page is hidden. Nothing else runs while the
// page loads, and nothing touches the network before it is hidden.
import {onCLS, onFCP, onINP, onLCP, onTTFB} from 'web-vitals';
import {consentLevel} from './clean.js';
import {readConfig} from './config.js';
import {pageContext} from './context.js';
import {addConversion, addMetric, createPageView, setConsent, setDim, startPageView, takeBeacon} from './payload.js';
import {installQueue} from './queue.js';
import {metricTarget} from './selector.js';
import {send} from './send.js';

/**
 * Every callback the browser or web-vitals calls goes through this: an
 * exception in the snippet must never reach the host page.
 * @template {any[]} A
 * @param {(...args: A) => void} fn
 * @returns {(...args: A) => void}
 */
const guard = (fn) => (...args) => {
  try {
    fn(...args);
  } catch (e) {
    // Swallowed on purpose.
  }
};

guard(() => {
  const config = readConfig(document);
  if (!config) return;
  const t0 = performance.timeOrigin;
  const view = createPageView(config, t0, Math.random);

  installQueue(window, ([command, a, b, c]) => {
    if (command == 'dim') setDim(view, a, b);
    if (command == 'conversion') addConversion(view, a, b, c);
    if (command == 'consent') setConsent(view, consentLevel(a));
  });

  // Registered before web-vitals' own pageshow listeners (same capture
  // phase, registration order), so the metrics it re-reports for the
  // restored page, navigationType 'back-forward-cache', already find the new
  // page view.
  addEventListener(
    'pageshow',
    guard((/** @type {PageTransitionEvent} */ event) => {
      if (event.persisted) startPageView(view, t0 + event.timeStamp, Math.random, true);
    }),
    true,
  );

  const report = guard((/** @type {import('web-vitals').MetricType} */ metric) =>
    addMetric(view, metric, metricTarget(metric)),
  );
  onTTFB(report);
  onFCP(report);
  onLCP(report);
  onINP(report);
  onCLS(report);

  const flush = guard(() => {
    // A prerendered page that is discarded unseen is not a page view.
    if (document.prerendering) return;
    const body = takeBeacon(view, () => pageContext(window, view._restored));
    if (body) send(config.endpoint, body);
  });
  // Not a capture listener: web-vitals reports INP, CLS and LCP from capture
  // listeners on the same event, and those must run first. pagehide covers
  // browsers that unload without a visibilitychange (older Safari).
  addEventListener('visibilitychange', () => document.visibilityState == 'hidden' && flush());
  addEventListener('pagehide', flush);
})();
