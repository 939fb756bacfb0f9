// A just-big-enough browser for running dist/binome.js in node's vm: the
// window's event listeners, the performance timeline web-vitals observes,
// sendBeacon/fetch recorders, storage and the embedding script tag.
import {readFileSync} from 'node:fs';
import vm from 'node:vm';
import {webcrypto} from 'node:crypto';

export const DIST = readFileSync(new URL('../dist/binome.js', import.meta.url), 'utf8');

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

export class FakeBrowser {
  constructor({dataset = {site: 'demo', release: 'demo-1'}, href = 'https://shop.example/?utm_source=newsletter&utm_campaign=bf#top', sendBeaconResult = true, queue = [], storage = 'ok', stub = true, prerendering = undefined} = {}) {
    this.listeners = [];
    this.observers = [];
    this.beacons = [];
    this.fetches = [];
    this.errors = [];
    this.now = 1500;
    const url = new URL(href);
    const items = new Map();
    const browser = this;
    const doc = {
      currentScript: {src: 'https://rum.example/binome.js', dataset},
      visibilityState: 'visible',
      readyState: 'complete',
      referrer: 'https://www.google.com/',
      prerendering,
      querySelector: () => null,
      addEventListener: () => {},
    };
    class PerformanceObserver {
      static supportedEntryTypes = ['paint', 'largest-contentful-paint', 'layout-shift', 'navigation'];
      constructor(callback) { this.callback = callback; browser.observers.push(this); }
      observe(opts) { this.type = opts.type; }
      takeRecords() { return []; }
      disconnect() { this.type = null; }
    }
    const win = {
      document: doc,
      location: {href: url.href, origin: url.origin, pathname: url.pathname, hash: url.hash},
      // The History API as a router calls it: the URL changes, no event fires.
      history: {
        pushState: (state, title, to) => browser.moveTo(to),
        replaceState: (state, title, to) => browser.moveTo(to),
      },
      navigator: {
        hardwareConcurrency: 8,
        deviceMemory: 4,
        connection: {effectiveType: '4g', rtt: 50, downlink: 10, saveData: false},
        sendBeacon: (endpoint, body) => {
          this.beacons.push({endpoint: String(endpoint), body});
          return sendBeaconResult;
        },
      },
      fetch: (endpoint, init) => {
        this.fetches.push({endpoint: String(endpoint), init});
        return Promise.reject(new TypeError('offline'));
      },
      performance: {
        timeOrigin: 1764150000000.123,
        now: () => this.now,
        getEntriesByType: (type) => (type == 'navigation' ? [this.navigationEntry] : []),
      },
      innerWidth: 390,
      innerHeight: 844,
      devicePixelRatio: 3,
      PerformanceObserver,
      addEventListener: (type, fn, opts) => {
        const capture = opts === true || !!(opts && opts.capture);
        this.listeners.push({type, fn, capture, once: !!(opts && opts.once)});
      },
      removeEventListener: (type, fn, opts) => {
        const capture = opts === true || !!(opts && opts.capture);
        this.listeners = this.listeners.filter((l) => !(l.type == type && l.fn == fn && l.capture == capture));
      },
      requestAnimationFrame: (fn) => setTimeout(fn, 1),
      setTimeout,
      clearTimeout,
      queueMicrotask,
      crypto: webcrypto,
      Blob,
      URL,
    };
    Object.defineProperty(win, 'sessionStorage', {
      enumerable: true,
      get() {
        browser.storageReads = (browser.storageReads || 0) + 1;
        if (storage == 'throws') throw new Error('SecurityError');
        return {getItem: (k) => (items.has(k) ? items.get(k) : null), setItem: (k, v) => items.set(k, String(v))};
      },
    });
    win.window = win;
    this.navigationEntry = {
      entryType: 'navigation', name: url.href, type: 'navigate', startTime: 0,
      domainLookupStart: 1, domainLookupEnd: 13, connectStart: 13, secureConnectionStart: 25, connectEnd: 43,
      responseStart: 210.4, domInteractive: 900, domContentLoadedEventStart: 950, loadEventStart: 1400,
      transferSize: 48213, nextHopProtocol: 'h2', activationStart: 0,
    };
    this.window = win;
    this.context = vm.createContext(win);
    if (stub) vm.runInContext('window.binome=window.binome||function(){(binome.q=binome.q||[]).push(arguments)};', this.context);
    for (const args of queue) this.call(...args);
  }

  /** Sets location as history.pushState/replaceState do (relative URLs allowed). */
  moveTo(to) {
    const next = new URL(to, this.window.location.href);
    Object.assign(this.window.location, {href: next.href, pathname: next.pathname, hash: next.hash});
  }

  /** Back or forward: the location changes, then popstate fires. */
  popTo(to) {
    this.moveTo(to);
    this.dispatch('popstate');
  }

  call(...args) {
    this.window.binome(...args);
  }

  load() {
    this.globalsBefore = Object.keys(this.window);
    vm.runInContext(DIST, this.context, {filename: 'binome.js'});
    return tick();
  }

  /** Dispatches at the document: window capture listeners, then window bubble listeners. */
  dispatch(type, props = {}) {
    const event = {type, isTrusted: true, timeStamp: this.now, ...props};
    for (const capture of [true, false]) {
      for (const l of this.listeners.filter((x) => x.type == type && x.capture == capture)) {
        if (l.once) this.listeners = this.listeners.filter((x) => x != l);
        l.fn(event);
      }
    }
  }

  async emit(type, entries) {
    for (const o of this.observers.filter((x) => x.type == type)) o.callback({getEntries: () => entries});
    await tick();
  }

  hide() {
    this.window.document.visibilityState = 'hidden';
    this.dispatch('visibilitychange');
  }

  show() {
    this.window.document.visibilityState = 'visible';
    this.dispatch('visibilitychange');
  }

  /** Every beacon body sent (sendBeacon and fetch), parsed. */
  sent() {
    return [...this.beacons.map((b) => b.body), ...this.fetches.map((f) => f.init.body)].map((body) => JSON.parse(body));
  }
}

export const element = (nodeName, {id = '', classes = [], parent = null} = {}) => ({nodeType: 1, nodeName, id, classList: classes, parentNode: parent});
