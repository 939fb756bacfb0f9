import assert from 'node:assert/strict';
import {describe, test} from 'node:test';
import {
  MAX_BEACON_BYTES,
  MAX_DIMS,
  MAX_EVENTS,
  addConversion,
  addMetric,
  createPageView,
  setConsent,
  setDim,
  startPageView,
  takeBeacon,
} from '../src/payload.js';
import {config, metric, next, page, view} from './helpers.mjs';

const ID = /^[A-Za-z0-9_-]{8,64}$/;

describe('page view identity', () => {
  test('pv is 16 characters of the id alphabet and differs between page views', () => {
    const ids = new Set();
    for (let i = 0; i < 200; i++) {
      const b = next(view());
      assert.match(b.pv, ID);
      assert.equal(b.pv.length, 16);
      ids.add(b.pv);
    }
    assert.equal(ids.size, 200);
  });

  test('the first beacon has seq 0, v 1, site, release, t0 to 0.1 ms and sid', () => {
    const b = next(view());
    assert.equal(b.v, 1);
    assert.equal(b.seq, 0);
    assert.equal(b.site, 'demo');
    assert.equal(b.release, 'demo-1');
    assert.equal(b.t0, 1764150000000.3);
    assert.equal(b.sid, 'Hc8s0d9f8g7h6j5k');
  });

  test('seq increases by one per send under the same pv', () => {
    const v = view();
    const beacons = [];
    for (let i = 0; i < 4; i++) {
      addMetric(v, metric('CLS', 0.01 * (i + 1)));
      beacons.push(next(v));
    }
    assert.deepEqual(beacons.map((b) => b.seq), [0, 1, 2, 3]);
    assert.equal(new Set(beacons.map((b) => b.pv)).size, 1);
  });

  test('a back/forward cache restore starts a new page view at seq 0', () => {
    const v = view();
    addMetric(v, metric('LCP', 1200));
    const first = next(v);
    startPageView(v, 1764150009000, () => 0, true);
    addMetric(v, metric('TTFB', 3, {navigationType: 'back-forward-cache'}));
    const restored = next(v);
    assert.notEqual(restored.pv, first.pv);
    assert.equal(restored.seq, 0);
    assert.equal(restored.t0, 1764150009000);
    assert.deepEqual(restored.metrics.map((m) => [m.name, m.navigationType]), [['TTFB', 'back-forward-cache']]);
  });

  test('dims and consent carry over a restore; unsent events do not', () => {
    const v = view();
    setDim(v, 'ab_variant', 'B');
    addConversion(v, 'purchase', 10);
    startPageView(v, 1, () => 0, true);
    const b = next(v);
    assert.deepEqual(b.dims, {ab_variant: 'B'});
    assert.equal(b.consent, 'marketing');
    assert.deepEqual(b.events, []);
  });
});

describe('what is resent', () => {
  test('a later send needs something new; the first send always goes', () => {
    const v = view();
    assert.ok(next(v), 'seq 0 goes even without metrics: it is the page view');
    assert.equal(next(v), null);
    assert.equal(next(v), null);
    addMetric(v, metric('INP', 120));
    assert.equal(next(v).seq, 1);
    assert.equal(next(v), null);
    addConversion(v, 'signup');
    assert.equal(next(v).seq, 2);
  });

  test('each send carries only the metrics reported since the previous one', () => {
    const v = view();
    addMetric(v, metric('TTFB', 80));
    addMetric(v, metric('FCP', 900));
    assert.deepEqual(next(v).metrics.map((m) => m.name), ['TTFB', 'FCP']);
    addMetric(v, metric('CLS', 0.05));
    assert.deepEqual(next(v).metrics.map((m) => m.name), ['CLS']);
  });

  test('a metric reported again with a new value is sent again, last value wins', () => {
    const v = view();
    addMetric(v, metric('CLS', 0.05));
    next(v);
    addMetric(v, metric('CLS', 0.08, {delta: 0.03}));
    addMetric(v, metric('CLS', 0.12, {delta: 0.04}));
    const b = next(v);
    assert.deepEqual(b.metrics, [
      {name: 'CLS', value: 0.12, id: 'v5-1764150000000-CLS', delta: 0.04, rating: 'good', navigationType: 'navigate'},
    ]);
  });

  test('page fields are in every beacon', () => {
    const v = view();
    next(v);
    addMetric(v, metric('INP', 64));
    const b = next(v);
    for (const field of ['url', 'ref', 'release', 'dims', 'device', 'nav', 'sid', 't0', 'consent']) {
      assert.ok(field in b, field);
    }
  });
});

describe('consent', () => {
  const filled = (consent) => {
    const v = view({consent});
    setDim(v, 'page_type', 'product');
    setDim(v, 'ab_variant', 'B');
    addConversion(v, 'purchase', 49.9, 'EUR');
    return v;
  };

  test('marketing sends the full URL, referrer, every dim and events', () => {
    const b = next(filled('marketing'));
    assert.equal(b.consent, 'marketing');
    assert.equal(b.url, page().href);
    assert.equal(b.ref, 'https://www.google.com/');
    assert.deepEqual(b.dims, {page_type: 'product', ab_variant: 'B'});
    assert.deepEqual(b.events, [{name: 'purchase', value: 49.9, currency: 'EUR'}]);
  });

  test('performance sends no query, fragment, referrer, dim but page_type, or event', () => {
    const b = next(filled('performance'));
    assert.equal(b.consent, 'performance');
    assert.equal(b.url, 'https://shop.example/p/42');
    assert.ok(!('ref' in b));
    assert.deepEqual(b.dims, {page_type: 'product'});
    assert.ok(!('events' in b));
  });

  test('performance without page_type sends empty dims', () => {
    const v = view({consent: 'performance'});
    setDim(v, 'ab_variant', 'A');
    assert.deepEqual(next(v).dims, {});
  });

  test('conversions recorded at performance are dropped, not held for a later consent', () => {
    const v = view({consent: 'performance'});
    addConversion(v, 'purchase', 49.9, 'EUR');
    setConsent(v, 'marketing');
    assert.deepEqual(next(v).events, []);
  });

  test('withdrawing consent drops the unsent events', () => {
    const v = view();
    addConversion(v, 'purchase', 1);
    setConsent(v, 'performance');
    setConsent(v, 'marketing');
    assert.deepEqual(next(v).events, []);
  });

  test('consent none sends nothing, and measuring resumes when it is given', () => {
    const v = view({consent: 'none'});
    addMetric(v, metric('LCP', 1000));
    assert.equal(next(v), null);
    setConsent(v, 'marketing');
    const b = next(v);
    assert.equal(b.seq, 0);
    assert.deepEqual(b.metrics.map((m) => m.name), ['LCP']);
    setConsent(v, 'none');
    addMetric(v, metric('CLS', 0.2));
    assert.equal(next(v), null);
  });

  test('unknown levels leave consent unchanged', () => {
    const v = view({consent: 'performance'});
    setConsent(v, undefined);
    assert.equal(next(v).consent, 'performance');
  });

  test('a query string is dropped at performance even when the page path is long', () => {
    const long = 'https://shop.example/' + 'a'.repeat(3000);
    const b = next(view({consent: 'performance'}), page({href: long + '?q=1', path: long}));
    assert.equal(b.url.length, 2048);
    assert.ok(!b.url.includes('?'));
  });

  test('an over-long full URL falls back to origin and path', () => {
    const href = 'https://shop.example/p/42?' + 'x=1&'.repeat(600);
    assert.equal(next(view(), page({href})).url, 'https://shop.example/p/42');
  });

  test('the page (and its sessionStorage) is read only when a beacon is due', () => {
    let reads = 0;
    const read = () => (reads++, page());
    takeBeacon(view({consent: 'none'}), read);
    takeBeacon(createPageView(config({sample: 0}), 1, () => 0), read);
    const v = view();
    takeBeacon(v, read);
    takeBeacon(v, read);
    assert.equal(reads, 1);
  });

  test('a page that is not http(s) sends nothing', () => {
    assert.equal(next(view(), page({href: 'file:///tmp/a.html', path: 'null/tmp/a.html'})), null);
  });
});

describe('sampling', () => {
  test('decided once per page view with random() < sample', () => {
    const draws = [0.2, 0.7];
    const v = createPageView(config({sample: 0.5}), 1, () => draws.shift());
    assert.ok(next(v), '0.2 < 0.5: in sample');
    startPageView(v, 2, () => draws.shift(), true);
    assert.equal(next(v), null, '0.7 >= 0.5: out of sample');
  });

  test('sample 0 never sends, sample 1 always does', () => {
    assert.equal(next(createPageView(config({sample: 0}), 1, () => 0)), null);
    assert.ok(next(createPageView(config({sample: 1}), 1, () => 0.999999)));
  });

  test('a page view outside the sample sends nothing whatever happens', () => {
    const v = createPageView(config({sample: 0.1}), 1, () => 0.5);
    addMetric(v, metric('LCP', 100));
    addConversion(v, 'purchase', 1);
    assert.equal(next(v), null);
    assert.equal(next(v), null);
  });
});

describe('dims and events', () => {
  test('dimension keys must match [a-z0-9_]{1,32}; values are cut at 128', () => {
    const v = view();
    setDim(v, 'Bad-Key', 'x');
    setDim(v, 'a'.repeat(33), 'x');
    setDim(v, '', 'x');
    setDim(v, 42, 'x');
    setDim(v, 'ok_key', 'y'.repeat(500));
    setDim(v, 'number', 12);
    assert.deepEqual(next(v).dims, {ok_key: 'y'.repeat(128), number: '12'});
  });

  test('at most 20 dims; existing ones can still change; null removes', () => {
    const v = view();
    for (let i = 0; i < 30; i++) setDim(v, `d${i}`, 'v');
    setDim(v, 'd0', 'changed');
    setDim(v, 'd1', null);
    setDim(v, 'late', 'x');
    const dims = next(v).dims;
    assert.equal(Object.keys(dims).length, MAX_DIMS);
    assert.equal(dims.d0, 'changed');
    assert.ok(!('d1' in dims));
    assert.equal(dims.late, 'x');
  });

  test('conversion value and currency are optional and cleaned', () => {
    const v = view();
    addConversion(v, 'signup');
    addConversion(v, 'purchase', 49.899999, 'eur');
    addConversion(v, 'refund', -5, 'EURO');
    addConversion(v, 'nan', NaN, 12);
    addConversion(v, '', 1);
    addConversion(v, 'x'.repeat(100), '12');
    assert.deepEqual(next(v).events, [
      {name: 'signup'},
      {name: 'purchase', value: 49.9, currency: 'EUR'},
      {name: 'refund', value: 0},
      {name: 'nan'},
      {name: 'x'.repeat(64)},
    ]);
  });

  test('at most 20 events per page view between sends', () => {
    const v = view();
    for (let i = 0; i < 30; i++) addConversion(v, `goal${i}`);
    assert.equal(next(v).events.length, MAX_EVENTS);
  });
});

describe('numbers the strict model accepts', () => {
  test('metric values are rounded, negatives clamped, non-finite ones dropped', () => {
    const v = view();
    addMetric(v, metric('LCP', 2140.56789, {delta: 2140.56789}));
    addMetric(v, metric('CLS', 0.123456, {delta: -0.000001}));
    addMetric(v, metric('INP', NaN));
    addMetric(v, metric('FCP', Infinity));
    addMetric(v, metric('TTFB', -3));
    const byName = Object.fromEntries(next(v).metrics.map((m) => [m.name, m]));
    assert.deepEqual(Object.keys(byName).sort(), ['CLS', 'LCP', 'TTFB']);
    assert.equal(byName.LCP.value, 2140.6);
    assert.equal(byName.CLS.value, 0.1235);
    assert.equal(Object.is(byName.CLS.delta, -0) ? 0 : byName.CLS.delta, 0);
    assert.equal(byName.TTFB.value, 0);
  });

  test('the attribution target travels with its metric', () => {
    const v = view();
    addMetric(v, metric('LCP', 1000), 'main>img.hero');
    addMetric(v, metric('TTFB', 10));
    const [lcp, ttfb] = next(v).metrics;
    assert.deepEqual(lcp.attribution, {target: 'main>img.hero'});
    assert.ok(!('attribution' in ttfb));
  });

  test('NUL and lone surrogates never reach the JSON', () => {
    const v = view();
    setDim(v, 'nul', 'a\0b');
    setDim(v, 'lone', '\ud83dx');
    setDim(v, 'cut', 'x'.repeat(127) + '\ud83d\ude00');
    setDim(v, 'emoji', '\ud83d\ude00');
    const json = takeBeacon(v, () => page());
    assert.doesNotMatch(json, /\\u0000|\\ud[89a-f]/);
    const dims = JSON.parse(json).dims;
    assert.equal(dims.nul, 'a\ufffdb');
    assert.equal(dims.lone, '\ufffdx');
    assert.equal(dims.cut, 'x'.repeat(127) + '\ufffd');
    assert.equal(dims.emoji, '\ud83d\ude00');
  });
});

describe('size', () => {
  const bytes = (json) => Buffer.byteLength(json);

  test('the largest beacon the public calls can build stays far under 60 KB', () => {
    const v = view();
    const wide = '\u20ac'.repeat(5000); // 3 UTF-8 bytes each
    for (let i = 0; i < 40; i++) setDim(v, `key_${i}`.padEnd(32, 'x'), wide);
    for (let i = 0; i < 40; i++) addConversion(v, `${i}`.padEnd(200, '\u20ac'), 1e15, 'EUR');
    for (const name of ['LCP', 'INP', 'CLS', 'FCP', 'TTFB']) addMetric(v, metric(name, 1, {id: wide}), 'x'.repeat(100));
    const long = 'https://shop.example/' + '\u20ac'.repeat(5000);
    const json = takeBeacon(v, () => page({href: long, path: long, ref: long}));
    const b = JSON.parse(json);
    assert.ok(bytes(json) < 40000, `${bytes(json)} bytes`);
    assert.equal(b.events.length, MAX_EVENTS);
    assert.ok(b.metrics.every((m) => m.attribution), 'nothing needed dropping');
  });

  test('over budget, attribution goes first', () => {
    const v = view();
    // More than the public calls allow, as if caps were raised some day.
    for (let i = 0; i < 20; i++) v._metrics[`M${i}`] = {name: `M${i}`, value: 1, attribution: {target: 'x'.repeat(4000)}};
    addConversion(v, 'purchase', 1);
    const json = takeBeacon(v, () => page());
    assert.ok(bytes(json) <= MAX_BEACON_BYTES);
    const b = JSON.parse(json);
    assert.equal(b.metrics.length, 20);
    assert.ok(b.metrics.every((m) => !('attribution' in m)));
    assert.equal(b.events.length, 1);
  });

  test('still over budget, events beyond five go', () => {
    const v = view();
    for (let i = 0; i < 20; i++) v._metrics[`M${i}`] = {name: `M${i}`, value: 1, attribution: {target: 'x'.repeat(4000)}};
    for (let i = 0; i < 200; i++) v._events.push({name: 'e'.repeat(400)});
    const json = takeBeacon(v, () => page());
    assert.ok(bytes(json) <= MAX_BEACON_BYTES, `${bytes(json)} bytes`);
    assert.equal(JSON.parse(json).events.length, 5);
  });
});
