// @ts-check
// Wiring: read the script tag, take the page's queued commands, listen to
// web-vitals, and send when the page is hidden. Nothing else runs while the
// page loads, and nothing touches the network before it is hidden.
import {onCLS, onFCP, onINP, onLCP, onTTFB} from 'web-vitals';
import {consentLevel} from './clean.js';
import {readConfig} from './config.js';
import {pageContext} from './context.js';
import {addConversion, addLoss, addMetric, createPageView, nextPageView, setConsent, setDim, takeBeacon} from './payload.js';
import {installQueue} from './queue.js';
import {watchRoutes} from './routes.js';
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
  let view = createPageView(config, t0, Math.random);
  // The page view that web-vitals' reports of the document's own navigation
  // (the load, or a back/forward cache restore) belong to.
  let doc = view;
  // The current page view and the last ones a route change ended: a report
  // may come after its route ended (LCP at the interaction that changed it).
  /** @type {import('./payload.js').PageView[]} */
  const views = [view];
  /** @type {import('./payload.js').Losses} */
  const losses = {};
  // The Soft Navigations API as web-vitals 6 requires it (its README, "Report
  // metrics for soft navigations").
  const softNavs = typeof globalThis.PerformanceSoftNavigation?.prototype.getLargestInteractionContentfulPaint == 'function';
  /** @param {import('./payload.js').PageView} next */
  const begin = (next) => {
    view = next;
    if (views.push(next) > 5) views.shift();
  };

  installQueue(window, guard(([command, a, b, c]) => {
    if (command == 'dim') setDim(view, a, b);
    if (command == 'conversion') addConversion(view, a, b, c);
    if (command == 'consent') setConsent(view, consentLevel(a));
  }));

  // Registered before web-vitals' own pageshow listeners (same capture
  // phase, registration order), so the metrics it re-reports for the
  // restored page, navigationType 'back-forward-cache', already find the new
  // page view.
  addEventListener(
    'pageshow',
    guard((/** @type {PageTransitionEvent} */ event) => {
      if (event.persisted) begin((doc = nextPageView(view, t0 + event.timeStamp, Math.random, true)));
    }),
    true,
  );

  const report = guard((/** @type {import('web-vitals').MetricType} */ metric) => {
    /** @type {import('./payload.js').PageView | undefined} */
    let target = doc;
    if (metric.navigationType == 'soft-navigation') {
      // The latest page view at the metric's URL.
      target = undefined;
      for (const v of views) if (v._page?.href == metric.navigationURL) target = v;
    } else if (!softNavs && /INP|CLS/.test(metric.name)) {
      // Without soft navigations web-vitals measures INP and CLS over the
      // whole document, reporting each change: a value reported while a page
      // view is current (a slower interaction, a larger window of layout
      // shifts than any before) happened while it was current (README,
      // "Single-page applications").
      target = view;
    }
    if (target) addMetric(target, metric, metricTarget(metric));
  });
  // reportAllChanges only where INP and CLS are measured per document (above);
  // LCP and FCP have one final value either way.
  const soft = {reportSoftNavs: true, reportAllChanges: !softNavs};
  onTTFB(report);
  onFCP(report, soft);
  onLCP(report, soft);
  onINP(report, soft);
  onCLS(report, soft);

  const flush = guard(() => {
    // A prerendered page that is discarded unseen is not a page view.
    if (document.prerendering) return;
    for (const v of views) {
      const body = takeBeacon(v, () => pageContext(window, v._restored, v._page), losses);
      // The counts a lost beacon carried are lost with it.
      if (body) send(config.endpoint, body, () => addLoss(losses, 'refused'), config.debug != null);
    }
  });

  // Not a capture listener: web-vitals reports INP, CLS and LCP from capture
  // listeners on the same event, and those must run first. pagehide covers
  // browsers that unload without a visibilitychange (older Safari).
  addEventListener('visibilitychange', () => document.visibilityState == 'hidden' && flush());
  addEventListener('pagehide', flush);
  watchRoutes(
    window,
    config.spa,
    guard((/** @type {string} */ previous) => {
      // The ended page view keeps the URL it had: the location has moved on.
      view._page ||= {href: previous};
      const next = nextPageView(view, t0 + performance.now(), Math.random, false, {href: location.href, ref: previous, nav: {type: 'soft-navigation'}});
      flush();
      begin(next);
    }),
  );
})();
