import assert from 'node:assert/strict';
import {test} from 'node:test';
import {readConfig} from '../src/config.js';

const script = (dataset, src = 'https://rum.example/binome.js') => ({src, dataset});
const doc = (current, fallback = null) => ({
  currentScript: current,
  querySelector: (sel) => (assert.equal(sel, 'script[data-site][src*="binome"]'), fallback),
});

test('reads the data-* attributes with their defaults', () => {
  assert.deepEqual(readConfig(doc(script({site: 'shop'}))), {
    site: 'shop', endpoint: 'https://rum.example/beacon', release: undefined, sample: 1, consent: 'performance',
  });
  assert.deepEqual(
    readConfig(doc(script({site: 'shop', release: '2026.11.3', endpoint: 'https://c.example/b', sample: '0.25', consent: 'marketing', spa: 'hash', debug: ''}))),
    {site: 'shop', endpoint: 'https://c.example/b', release: '2026.11.3', sample: 0.25, consent: 'marketing', spa: 'hash', debug: ''},
  );
});

test('data-consent none and odd values', () => {
  assert.equal(readConfig(doc(script({site: 's', consent: 'none'}))).consent, 'none');
  assert.equal(readConfig(doc(script({site: 's', consent: 'yes'}))).consent, 'performance');
  assert.equal(readConfig(doc(script({site: 's', sample: 'abc'}))).sample, 1);
  assert.equal(readConfig(doc(script({site: 's', sample: '0'}))).sample, 0);
  assert.equal(readConfig(doc(script({site: 's', release: 'r'.repeat(100)}))).release.length, 64);
});

test('falls back to querySelector when currentScript is not set', () => {
  assert.equal(readConfig(doc(null, script({site: 'tagged'}))).site, 'tagged');
});

test('no tag, no site or an invalid site: the snippet stays inert', () => {
  assert.equal(readConfig(doc(null, null)), undefined);
  assert.equal(readConfig(doc(script({}))), undefined);
  assert.equal(readConfig(doc(script({site: 'Not A Site'}))), undefined);
});
