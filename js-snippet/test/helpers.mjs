// Shared fixtures for the unit tests.
import {createPageView} from '../src/payload.js';

export const config = (overrides = {}) => ({
  site: 'demo',
  endpoint: 'https://rum.example/beacon',
  release: 'demo-1',
  sample: 1,
  consent: 'marketing',
  ...overrides,
});

export const page = (overrides = {}) => ({
  href: 'https://shop.example/p/42?utm_source=newsletter&utm_campaign=black-friday&x=1#reviews',
  path: 'https://shop.example/p/42',
  ref: 'https://www.google.com/',
  sid: 'Hc8s0d9f8g7h6j5k',
  device: {vw: 390, vh: 844},
  nav: {type: 'navigate', ttfb: 210},
  ...overrides,
});

export const metric = (name, value, overrides = {}) => ({
  name,
  value,
  delta: value,
  id: `v5-1764150000000-${name}`,
  rating: 'good',
  navigationType: 'navigate',
  entries: [],
  ...overrides,
});

/** A page view in sample (random() = 0) with the given config overrides. */
export const view = (overrides = {}, t0 = 1764150000000.25) => createPageView(config(overrides), t0, () => 0);

/** The next beacon as an object, or null when nothing is sent. */
export const next = (v, p = page()) => {
  const json = takeBeaconJson(v, () => p);
  return json ? JSON.parse(json) : null;
};

import {takeBeacon as takeBeaconJson} from '../src/payload.js';
