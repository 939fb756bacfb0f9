// Beacons built from hostile inputs, and those of the built snippet, pass the
// collector's own strict pydantic model (collector/beacon.py), run in the
// project's Python. Skipped when no Python with the collector is at hand,
// except under CI=true.
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {existsSync} from 'node:fs';
import {test} from 'node:test';
import {addConversion, addMetric, setConsent, setDim, startPageView, takeBeacon} from '../src/payload.js';
import {deviceHints, navTiming} from '../src/context.js';
import {FakeBrowser, element} from './fake-browser.mjs';
import {metric, page, view} from './helpers.mjs';

const ROOT = new URL('../../', import.meta.url).pathname;
const PYTHON = process.env.BINOME_PYTHON || `${ROOT}.venv/bin/python`;

const VALIDATE = `
import sys
from collector.beacon import BeaconError, parse_beacon
bad = 0
for n, line in enumerate(sys.stdin.buffer):
    try:
        parse_beacon(line.rstrip(b"\\n"))
    except BeaconError as exc:
        bad += 1
        print(n, exc.code, exc.detail, line[:300])
sys.exit(1 if bad else 0)
`;

const hostileBeacons = () => {
  const out = [];
  const hostile = [NaN, Infinity, -Infinity, -1, 1e20, 2.5, '12', null, undefined, {}, true];
  for (const x of hostile) {
    const v = view();
    setDim(v, 'k', x);
    addConversion(v, 'goal', x, x);
    for (const name of ['LCP', 'INP', 'CLS', 'FCP', 'TTFB']) addMetric(v, metric(name, 1000, {delta: x, id: x}));
    addMetric(v, metric('LCP', x));
    const device = deviceHints({
      innerWidth: x, innerHeight: x, devicePixelRatio: x,
      navigator: {deviceMemory: x, hardwareConcurrency: x, connection: {effectiveType: x, rtt: x, downlink: x, saveData: typeof x == 'boolean' ? x : undefined}},
    });
    const nav = navTiming({
      type: 'back_forward', domainLookupStart: x, domainLookupEnd: x, connectStart: 0, connectEnd: x, secureConnectionStart: x,
      responseStart: x, domInteractive: x, domContentLoadedEventStart: x, loadEventStart: x, transferSize: x, nextHopProtocol: x,
    });
    out.push(takeBeacon(v, () => page({device, nav, ref: x})));
  }
  const strings = ['', '\0', '\ud800', '\udfff\ud800', 'x'.repeat(10000), '\u20ac'.repeat(3000), '\ud83d\ude00'.repeat(100)];
  for (const s of strings) {
    const v = view({release: s.slice(0, 64)});
    setDim(v, 'page_type', s);
    setDim(v, 'other', s);
    addConversion(v, s || 'x', 1, s);
    addMetric(v, metric('LCP', 1, {id: s}), s.slice(0, 100));
    // location.href is always a serialized (percent-encoded) URL.
    out.push(takeBeacon(v, () => page({ref: s, href: new URL(`https://shop.example/${s.slice(0, 20)}?q=${s}`).href})));
  }
  for (const consent of ['performance', 'marketing']) {
    const v = view({consent});
    setDim(v, 'page_type', 'landing');
    addConversion(v, 'purchase', 49.9, 'EUR');
    out.push(takeBeacon(v, () => page()));
    startPageView(v, 1, () => 0, true);
    addMetric(v, metric('TTFB', 0, {navigationType: 'back-forward-cache'}));
    out.push(takeBeacon(v, () => page({nav: {type: 'back-forward-cache'}})));
    setConsent(v, 'none');
  }
  return out.filter(Boolean);
};

const snippetBeacons = async () => {
  const b = new FakeBrowser({queue: [['consent', 'marketing'], ['dim', 'page_type', 'landing'], ['conversion', 'purchase', 49.9, 'EUR']]});
  await b.load();
  await b.emit('paint', [{name: 'first-contentful-paint', startTime: 480.123}]);
  await b.emit('largest-contentful-paint', [{startTime: 920.26, element: element('IMG', {classes: ['hero']})}]);
  await b.emit('layout-shift', [{value: 0.0421234, startTime: 1100, hadRecentInput: false, sources: [{node: element('DIV')}]}]);
  b.hide();
  b.show();
  await b.emit('layout-shift', [{value: 0.3, startTime: 2100, hadRecentInput: false, sources: []}]);
  b.hide();
  b.dispatch('pagehide', {persisted: true});
  b.dispatch('pageshow', {persisted: true, timeStamp: 9000});
  await new Promise((r) => setTimeout(r, 30));
  b.hide();
  assert.equal(b.beacons.length, 3);
  return b.beacons.map((x) => x.body);
};

/** Route changes (issue 22) and a lost beacon's count in the next one. */
const spaBeacons = async () => {
  const b = new FakeBrowser({queue: [['consent', 'marketing']], sendBeaconResult: false});
  await b.load();
  b.hide();
  await new Promise((r) => setTimeout(r, 10));
  b.show();
  b.window.navigator.sendBeacon = (endpoint, body) => b.beacons.push({endpoint, body}) > 0;
  b.window.history.pushState({}, '', '/product/42');
  await b.emit('layout-shift', [{value: 0.1, startTime: 2100, hadRecentInput: false, sources: []}]);
  b.popTo('/');
  b.hide();
  const bodies = b.beacons.map((x) => x.body);
  assert.ok(bodies.some((x) => JSON.parse(x).lost?.refused == 1));
  assert.ok(bodies.some((x) => JSON.parse(x).nav?.type == 'soft-navigation'));
  return bodies;
};

test('every beacon passes the collector model', async (t) => {
  if (!existsSync(PYTHON)) {
    if (process.env.CI === 'true') assert.fail(`no Python at ${PYTHON}`);
    return t.skip(`no Python at ${PYTHON} (set BINOME_PYTHON)`);
  }
  const beacons = [...hostileBeacons(), ...(await snippetBeacons()), ...(await spaBeacons())];
  assert.ok(beacons.length >= 25, `${beacons.length} beacons`);
  for (const b of beacons) assert.doesNotMatch(b, /\n/);
  const run = spawnSync(PYTHON, ['-c', VALIDATE], {input: beacons.join('\n') + '\n', cwd: ROOT, encoding: 'utf8'});
  if (run.error) throw run.error;
  assert.equal(run.status, 0, run.stdout + run.stderr);
  t.diagnostic(`${beacons.length} beacons validated`);
});
