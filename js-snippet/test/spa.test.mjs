// Single-page applications (issue 22): each route a page view of its own, the
// built snippet run in the fake browser (which has no Soft Navigations API,
// so the per-document fallback of README "Single-page applications" runs),
// and what the snippet failed to send reported with its next beacon.
import assert from 'node:assert/strict';
import {describe, test} from 'node:test';
import {addLoss, addMetric, nextPageView, takeBeacon} from '../src/payload.js';
import {FakeBrowser, element} from './fake-browser.mjs';
import {page, view} from './helpers.mjs';

const LANDING = 'https://shop.example/?utm_source=newsletter&utm_campaign=winter';
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

/** A landing page with marketing consent that painted and shifted once. */
const spa = async (dataset = {}) => {
  const b = new FakeBrowser({dataset: {site: 'demo', ...dataset}, href: LANDING, queue: [['consent', 'marketing'], ['dim', 'page_type', 'landing']]});
  await b.load();
  await b.emit('paint', [{name: 'first-contentful-paint', startTime: 480, entryType: 'paint'}]);
  await b.emit('largest-contentful-paint', [{startTime: 920, element: element('H1'), entryType: 'largest-contentful-paint'}]);
  await b.emit('layout-shift', [{value: 0.042, startTime: 1100, hadRecentInput: false, sources: [], entryType: 'layout-shift'}]);
  return b;
};

const names = (beacon) => beacon.metrics.map((m) => m.name).sort();

describe('route changes in the built snippet', () => {
  test('pushState ends the page view at once and starts another in the same session', async () => {
    const b = await spa();
    b.now = 3000;
    b.window.history.pushState({}, '', '/product/42');
    assert.equal(b.beacons.length, 1, 'the landing page view is sent when its route ends');
    b.call('dim', 'page_type', 'product');
    b.call('conversion', 'add_to_cart', 12, 'EUR');
    b.hide();
    const [landing, product] = b.sent();
    assert.equal(landing.url, LANDING);
    assert.equal(landing.nav.type, 'navigate');
    assert.deepEqual(landing.dims, {page_type: 'landing'});
    assert.equal(landing.events.length, 0);
    assert.notEqual(product.pv, landing.pv);
    assert.equal(product.sid, landing.sid);
    assert.equal(product.seq, 0);
    assert.equal(product.t0, 1764150003000.1);
    assert.equal(product.url, 'https://shop.example/product/42');
    assert.equal(product.ref, LANDING, 'the referrer of a route is the previous route');
    assert.deepEqual(product.nav, {type: 'soft-navigation'});
    assert.deepEqual(product.dims, {page_type: 'product'});
    assert.deepEqual(product.events, [{name: 'add_to_cart', value: 12, currency: 'EUR'}]);
  });

  test('without a Soft Navigations API: a route has the CLS that grew while it was current, and no LCP', async () => {
    const b = await spa();
    b.now = 3000;
    b.window.history.pushState({}, '', '/product/42');
    b.now = 4000;
    await b.emit('layout-shift', [{value: 0.2, startTime: 3900, hadRecentInput: false, sources: [], entryType: 'layout-shift'}]);
    b.hide();
    const [landing, product] = b.sent();
    assert.deepEqual(names(landing), ['CLS', 'FCP', 'LCP', 'TTFB']);
    assert.equal(landing.metrics.find((m) => m.name == 'CLS').value, 0.042);
    assert.deepEqual(names(product), ['CLS']);
    assert.equal(product.metrics[0].value, 0.2);
  });

  test('replaceState on the same path is the same page view; to another path a new one', async () => {
    const b = await spa();
    b.window.history.replaceState({}, '', '/?tab=2');
    assert.equal(b.beacons.length, 0);
    b.window.history.replaceState({}, '', '/cart');
    b.hide();
    const [landing, cart] = b.sent();
    assert.equal(landing.url, LANDING, 'the landing page keeps the URL it was loaded with');
    assert.equal(cart.url, 'https://shop.example/cart');
    assert.equal(cart.ref, LANDING);
  });

  test('popstate back to a route is a page view again', async () => {
    const b = await spa();
    b.window.history.pushState({}, '', '/product/42');
    b.window.history.pushState({}, '', '/cart');
    b.popTo('/product/42');
    b.hide();
    const sent = b.sent();
    assert.deepEqual(sent.map((x) => new URL(x.url).pathname), ['/', '/product/42', '/cart', '/product/42']);
    assert.equal(new Set(sent.map((x) => x.pv)).size, 4);
    assert.equal(new Set(sent.map((x) => x.sid)).size, 1);
  });

  test('a hash change is a route only with data-spa="hash"', async () => {
    const plain = await spa();
    plain.popTo('/#/cart');
    plain.dispatch('hashchange');
    plain.hide();
    assert.equal(plain.sent().length, 1);
    const hash = await spa({spa: 'hash'});
    hash.popTo('/#/cart');
    hash.hide();
    const sent = hash.sent();
    assert.equal(sent.length, 2);
    assert.equal(sent[1].nav.type, 'soft-navigation');
  });

  test('data-spa="off": one page view, as on a multi-page site', async () => {
    const b = await spa({spa: 'off'});
    b.window.history.pushState({}, '', '/product/42');
    b.hide();
    const sent = b.sent();
    assert.equal(sent.length, 1);
    assert.equal(sent[0].nav.type, 'navigate');
  });

  test('without marketing consent a route sends its path only', async () => {
    const b = new FakeBrowser({href: LANDING});
    await b.load();
    b.window.history.pushState({}, '', '/product/42?utm_campaign=leak');
    b.hide();
    for (const beacon of b.sent()) {
      assert.equal(beacon.consent, 'performance');
      assert.doesNotMatch(beacon.url, /[?#]/);
      assert.equal(beacon.ref, undefined);
    }
  });
});

describe('what the snippet failed to send', () => {
  test('refused by sendBeacon and fetch: counted, then sent with the next beacon', async () => {
    const b = await spa({});
    b.window.navigator.sendBeacon = () => false;
    b.hide();
    await tick();
    assert.equal(b.fetches.length, 1, 'the fetch fallback was tried');
    b.show();
    b.window.navigator.sendBeacon = (endpoint, body) => b.beacons.push({endpoint, body}) > 0;
    await b.emit('layout-shift', [{value: 0.3, startTime: 2500, hadRecentInput: false, sources: [], entryType: 'layout-shift'}]);
    b.hide();
    const next = JSON.parse(b.beacons.at(-1).body);
    assert.deepEqual(next.lost, {refused: 1});
    b.show();
    await b.emit('layout-shift', [{value: 0.31, startTime: 2600, hadRecentInput: false, sources: [], entryType: 'layout-shift'}]);
    b.hide();
    assert.equal(JSON.parse(b.beacons.at(-1).body).lost, undefined, 'counted once');
  });

  test('a beacon still over the keepalive budget is not sent but counted', () => {
    const losses = {};
    const v = view();
    for (let i = 0; i < 20; i++) addMetric(v, {name: `M${i}`, value: 1}, 'x'.repeat(4000));
    const huge = 'https://shop.example/' + 'p'.repeat(2000);
    assert.equal(takeBeacon(v, () => page({device: {blob: 'x'.repeat(70000)}, href: huge}), losses), '');
    assert.deepEqual(losses, {oversize: 1});
    const next = nextPageView(v, 2, () => 0, false, {href: 'https://shop.example/cart'});
    const beacon = JSON.parse(takeBeacon(next, () => page(), losses));
    assert.deepEqual(beacon.lost, {oversize: 1});
    assert.deepEqual(losses, {});
  });

  test('counts stay within the model bounds', () => {
    const losses = {};
    addLoss(losses, 'refused', 9999);
    addLoss(losses, 'refused', 5);
    assert.deepEqual(losses, {refused: 10000});
  });
});
