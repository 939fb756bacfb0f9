// The built snippet, run in a fake browser: wiring, timing of sends, globals.
import assert from 'node:assert/strict';
import {describe, test} from 'node:test';
import {FakeBrowser, element} from './fake-browser.mjs';

const main = element('MAIN', {id: 'shop'});
const hero = element('H1', {classes: ['hero'], parent: main});
const banner = element('DIV', {classes: ['promo-banner'], parent: main});

/** A page that paints, gets its LCP and shifts once. */
const visit = async (options) => {
  const b = new FakeBrowser(options);
  await b.load();
  await b.emit('paint', [{name: 'first-contentful-paint', startTime: 480, entryType: 'paint'}]);
  await b.emit('largest-contentful-paint', [{startTime: 920.26, element: hero, entryType: 'largest-contentful-paint'}]);
  await b.emit('layout-shift', [{value: 0.042, startTime: 1100, hadRecentInput: false, sources: [{node: banner}], entryType: 'layout-shift'}]);
  return b;
};

describe('dist/binome.js in a fake browser', () => {
  test('defines no global but binome and sends nothing while the page is visible', async () => {
    const b = await visit();
    const added = Object.keys(b.window).filter((k) => !b.globalsBefore.includes(k));
    assert.deepEqual(added, []);
    assert.equal(typeof b.window.binome, 'function');
    assert.equal(b.window.binome.q, undefined);
    assert.equal(b.beacons.length + b.fetches.length, 0);
  });

  test('on hidden: one text/plain beacon to the default endpoint with the five metrics but INP', async () => {
    const b = await visit({queue: [['dim', 'page_type', 'landing'], ['dim', 'ab_variant', 'B'], ['consent', 'marketing']]});
    b.hide();
    b.dispatch('pagehide', {persisted: false});
    assert.equal(b.beacons.length, 1, 'pagehide right after adds nothing new');
    assert.equal(b.beacons[0].endpoint, 'https://rum.example/beacon');
    assert.equal(typeof b.beacons[0].body, 'string');
    const [beacon] = b.sent();
    assert.equal(beacon.seq, 0);
    assert.equal(beacon.consent, 'marketing');
    assert.equal(beacon.url, 'https://shop.example/?utm_source=newsletter&utm_campaign=bf#top');
    assert.equal(beacon.ref, 'https://www.google.com/');
    assert.deepEqual(beacon.dims, {page_type: 'landing', ab_variant: 'B'});
    assert.equal(beacon.t0, 1764150000000.1);
    assert.match(beacon.sid, /^[A-Za-z0-9_-]{16}$/);
    assert.deepEqual(beacon.device, {vw: 390, vh: 844, dpr: 3, mem: 4, cpus: 8, ect: '4g', rtt: 50, downlink: 10, save_data: false});
    assert.deepEqual(beacon.nav, {type: 'navigate', dns: 12, connect: 30, tls: 18, ttfb: 210, dom_interactive: 900, dcl: 950, load: 1400, transfer_size: 48213, protocol: 'h2'});
    const metrics = Object.fromEntries(beacon.metrics.map((m) => [m.name, m]));
    assert.deepEqual(Object.keys(metrics).sort(), ['CLS', 'FCP', 'LCP', 'TTFB']);
    assert.equal(metrics.TTFB.value, 210.4);
    assert.equal(metrics.FCP.value, 480);
    assert.equal(metrics.LCP.value, 920.3);
    assert.deepEqual(metrics.LCP.attribution, {target: '#shop>h1.hero'});
    assert.equal(metrics.CLS.value, 0.042);
    assert.deepEqual(metrics.CLS.attribution, {target: '#shop>div.promo-banner'});
    assert.match(metrics.LCP.id, /^v6-/);
    assert.equal(metrics.LCP.rating, 'good');
    assert.equal(metrics.LCP.navigationType, 'navigate');
  });

  test('a later hide sends only what changed, under the next seq', async () => {
    const b = await visit();
    b.hide();
    b.show();
    b.now = 5000;
    await b.emit('layout-shift', [{value: 0.2, startTime: 4000, hadRecentInput: false, sources: [], entryType: 'layout-shift'}]);
    b.hide();
    b.dispatch('pagehide', {persisted: false});
    const sent = b.sent();
    assert.deepEqual(sent.map((x) => x.seq), [0, 1]);
    assert.equal(sent[1].pv, sent[0].pv);
    assert.deepEqual(sent[1].metrics.map((m) => [m.name, m.value]), [['CLS', 0.2]]);
  });

  test('a back/forward cache restore is a new page view', async () => {
    const b = await visit();
    b.hide();
    b.dispatch('pagehide', {persisted: true});
    b.now = 9000;
    b.window.document.visibilityState = 'visible';
    b.dispatch('pageshow', {persisted: true, timeStamp: 9000});
    await new Promise((r) => setTimeout(r, 30));
    b.hide();
    const [first, restored] = b.sent();
    assert.notEqual(restored.pv, first.pv);
    assert.equal(restored.seq, 0);
    assert.equal(restored.sid, first.sid);
    assert.equal(restored.t0, 1764150009000.1);
    assert.deepEqual(restored.nav, {type: 'back-forward-cache'});
    assert.ok(restored.metrics.length > 0);
    for (const m of restored.metrics) assert.equal(m.navigationType, 'back-forward-cache', m.name);
  });

  test('consent performance (the default) strips marketing fields', async () => {
    const b = await visit({queue: [['dim', 'page_type', 'landing'], ['dim', 'ab_variant', 'B'], ['conversion', 'purchase', 10, 'EUR']]});
    b.hide();
    const [beacon] = b.sent();
    assert.equal(beacon.consent, 'performance');
    assert.equal(beacon.url, 'https://shop.example/');
    assert.ok(!('ref' in beacon) && !('events' in beacon));
    assert.deepEqual(beacon.dims, {page_type: 'landing'});
  });

  test('a bad command, queued or called, never throws into the page', async () => {
    const bad = {toString() { throw new Error('bug'); }};
    const b = await visit({queue: [['dim', 'page_type', bad], ['dim', 'page_type', 'landing']]});
    assert.doesNotThrow(() => b.call('dim', 'ab_variant', bad));
    b.hide();
    assert.deepEqual(b.sent()[0].dims, {page_type: 'landing'});
  });

  test('data-debug: sent by fetch, the beacon logged with the answer\'s status and body', async () => {
    const b = new FakeBrowser({dataset: {site: 'demo', debug: ''}});
    const logs = [];
    b.window.console = {log: (...args) => logs.push(args)};
    const answer = '{"error":"unknown_site","detail":"site demo is not registered"}';
    b.window.fetch = (endpoint, init) => {
      b.fetches.push({endpoint: String(endpoint), init});
      return Promise.resolve({status: 403, text: async () => answer});
    };
    await b.load();
    b.hide();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(b.beacons.length, 0, 'no sendBeacon: its answer cannot be read');
    assert.equal(b.fetches.length, 1);
    assert.deepEqual(logs, [['binome', b.fetches[0].init.body, 403, answer]]);
  });

  test('without data-debug nothing is logged', async () => {
    const b = new FakeBrowser({sendBeaconResult: false});
    const logs = [];
    b.window.console = {log: (...args) => logs.push(args)};
    b.window.fetch = (endpoint, init) => {
      b.fetches.push({endpoint: String(endpoint), init});
      return Promise.resolve({status: 204, text: async () => ''});
    };
    await b.load();
    b.hide();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(b.fetches.length, 1);
    assert.deepEqual(logs, []);
  });

  test('conversions after consent is given are sent', async () => {
    const b = await visit({href: 'https://shop.example/demo/thanks.html', queue: [['consent', 'marketing']]});
    b.call('conversion', 'purchase', 49.9, 'EUR');
    b.hide();
    assert.deepEqual(b.sent()[0].events, [{name: 'purchase', value: 49.9, currency: 'EUR'}]);
  });

  for (const [label, options] of [
    ['data-consent none', {dataset: {site: 'demo', consent: 'none'}}],
    ["binome('consent', false)", {queue: [['consent', false]]}],
    ['data-sample 0', {dataset: {site: 'demo', sample: '0'}}],
    ['no data-site', {dataset: {}}],
  ]) {
    test(`${label}: no network at all`, async () => {
      const b = await visit(options);
      b.hide();
      b.dispatch('pagehide', {persisted: false});
      assert.equal(b.beacons.length + b.fetches.length, 0);
      assert.equal(b.storageReads || 0, 0, 'sessionStorage untouched');
    });
  }

  test('a prerendered page discarded before activation sends nothing', async () => {
    const b = await visit({prerendering: true});
    b.window.document.visibilityState = 'hidden';
    b.dispatch('visibilitychange');
    b.dispatch('pagehide', {persisted: false});
    assert.equal(b.beacons.length + b.fetches.length, 0);
  });

  test('falls back to fetch keepalive when sendBeacon refuses', async () => {
    const b = await visit({sendBeaconResult: false, dataset: {site: 'demo', endpoint: 'https://collector.example/beacon'}});
    b.hide();
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(b.fetches.length, 1);
    const {endpoint, init} = b.fetches[0];
    assert.equal(endpoint, 'https://collector.example/beacon');
    assert.deepEqual(JSON.parse(JSON.stringify({...init, body: undefined})), {
      method: 'POST', keepalive: true, credentials: 'omit',
    });
    assert.equal(JSON.parse(init.body).site, 'demo');
  });

  test('works without the embedding stub and with a throwing sessionStorage', async () => {
    const b = new FakeBrowser({stub: false, storage: 'throws'});
    await b.load();
    assert.deepEqual(Object.keys(b.window).filter((k) => !b.globalsBefore.includes(k)), ['binome']);
    b.call('dim', 'page_type', 'home');
    b.hide();
    const [beacon] = b.sent();
    assert.ok(!('sid' in beacon));
    assert.deepEqual(beacon.dims, {page_type: 'home'});
  });

  test('bad calls and hostile environments never throw into the page', async () => {
    const b = await visit();
    assert.doesNotThrow(() => {
      b.call();
      b.call('dim');
      b.call('conversion', {toString: () => { throw new Error('x'); }});
      b.call('consent', 'maybe');
      b.call('unknown', 1, 2);
    });
    Object.defineProperty(b.window.navigator, 'connection', {get() { throw new Error('boom'); }});
    b.window.navigator.sendBeacon = () => { throw new Error('boom'); };
    b.window.fetch = () => { throw new Error('boom'); };
    assert.doesNotThrow(() => b.hide());
    assert.doesNotThrow(() => b.dispatch('pagehide', {persisted: false}));
  });
});

export {visit};
