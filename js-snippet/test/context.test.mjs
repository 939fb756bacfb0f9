import assert from 'node:assert/strict';
import {test} from 'node:test';
import {deviceHints, navTiming, pageContext, sessionId} from '../src/context.js';

const storage = () => {
  const items = new Map();
  return {getItem: (k) => (items.has(k) ? items.get(k) : null), setItem: (k, v) => items.set(k, String(v)), items};
};

test('device hints are rounded to what the strict model accepts', () => {
  const hints = deviceHints({
    innerWidth: 390.4,
    innerHeight: 844.6,
    devicePixelRatio: 2.625,
    navigator: {deviceMemory: 0.5, hardwareConcurrency: 8, connection: {effectiveType: '4g', rtt: 50, downlink: 10.35, saveData: false}},
  });
  assert.deepEqual(hints, {vw: 390, vh: 845, dpr: 2.63, mem: 0.5, cpus: 8, ect: '4g', rtt: 50, downlink: 10.35, save_data: false});
  assert.ok(Number.isInteger(hints.vw) && Number.isInteger(hints.vh) && Number.isInteger(hints.cpus));
});

test('absent, odd or negative hints are left out or clamped', () => {
  const hints = JSON.parse(JSON.stringify(deviceHints({
    innerWidth: -1,
    innerHeight: NaN,
    devicePixelRatio: 1e9,
    navigator: {connection: {effectiveType: '5g', rtt: -10}},
  })));
  assert.deepEqual(hints, {vw: 0, dpr: 100, rtt: 0});
  assert.deepEqual(JSON.parse(JSON.stringify(deviceHints({}))), {});
});

test('navigation timing breakdown', () => {
  const nav = navTiming({
    type: 'navigate',
    domainLookupStart: 10.2,
    domainLookupEnd: 22.5,
    connectStart: 22.5,
    secureConnectionStart: 34.1,
    connectEnd: 52.9,
    responseStart: 210.4,
    domInteractive: 900.2,
    domContentLoadedEventStart: 950.7,
    loadEventStart: 1400.5,
    transferSize: 48213,
    nextHopProtocol: 'h2',
  });
  assert.deepEqual(nav, {
    type: 'navigate', dns: 12, connect: 30, tls: 19, ttfb: 210, dom_interactive: 900, dcl: 951, load: 1401, transfer_size: 48213, protocol: 'h2',
  });
});

test('navigation timing before load, without TLS, with an unknown type', () => {
  const nav = JSON.parse(JSON.stringify(navTiming({
    type: 'teleport', connectStart: 5, connectEnd: 3, secureConnectionStart: 0, responseStart: 40,
    domInteractive: 0, domContentLoadedEventStart: 0, loadEventStart: 0, transferSize: 0, nextHopProtocol: '',
  })));
  assert.deepEqual(nav, {connect: 0, tls: 0, ttfb: 40, transfer_size: 0});
  assert.equal(navTiming(undefined), undefined);
});

test('the session id is created once per tab and reused', () => {
  const win = {sessionStorage: storage()};
  const sid = sessionId(win);
  assert.match(sid, /^[A-Za-z0-9_-]{16}$/);
  assert.equal(sessionId(win), sid);
  assert.deepEqual([...win.sessionStorage.items.keys()], ['binome.sid']);
});

test('a clobbered session id is replaced; a throwing sessionStorage means no sid', () => {
  const win = {sessionStorage: storage()};
  win.sessionStorage.setItem('binome.sid', 'bad id!');
  assert.match(sessionId(win), /^[A-Za-z0-9_-]{16}$/);
  const throwing = {get sessionStorage() { throw new DOMException('denied', 'SecurityError'); }};
  assert.equal(sessionId(throwing), undefined);
  assert.equal(sessionId({sessionStorage: {getItem: () => null, setItem: () => { throw new Error('quota'); }}}), undefined);
});

test('page context of a restored page carries only the navigation type', () => {
  const win = {
    location: {href: 'https://shop.example/a?b=1#c', origin: 'https://shop.example', pathname: '/a'},
    document: {referrer: 'https://ref.example/'},
    sessionStorage: storage(),
    performance: {getEntriesByType: () => [{type: 'reload', responseStart: 5}]},
  };
  const fresh = pageContext(win, false);
  assert.equal(fresh.href, 'https://shop.example/a?b=1#c');
  assert.equal(fresh.path, 'https://shop.example/a');
  assert.equal(fresh.nav.type, 'reload');
  assert.deepEqual(pageContext(win, true).nav, {type: 'back-forward-cache'});
});
