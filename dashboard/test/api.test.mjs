// The page's filters live in its URL; the token stays there.
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {filtersFromSearch, hrefFor} from '../src/api.js';
import {bucketLabel, pooledRate} from '../src/speed.js';
import {formatter} from '../src/format.js';

test('filters from and to the URL, keeping the token', () => {
  assert.deepEqual(filtersFromSearch('?token=x&site=shop&from=2026-03-01&country='), {site: 'shop', from: '2026-03-01'});
  const href = hrefFor('http://h/dashboard?token=x&country=FR', {site: 'shop', device_class: 'mobile'});
  assert.equal(href, 'http://h/dashboard?token=x&site=shop&device_class=mobile');
});

test('speed buckets and the pooled conversion rate of fast and slow landings', () => {
  const f = formatter('en-US');
  assert.equal(bucketLabel(0, f), '0–0.5\u00a0s');
  assert.equal(bucketLabel(2000, f), '2–2.5\u00a0s');
  assert.equal(bucketLabel(10000, f), '10\u00a0s+');
  const rows = [
    {lcp_bucket_ms: 1500, sessions: 100, conversions: 10},
    {lcp_bucket_ms: 2000, sessions: 100, conversions: 6},
    {lcp_bucket_ms: 2500, sessions: 50, conversions: 1},
    {lcp_bucket_ms: 4000, sessions: 40, conversions: 1},
  ];
  assert.equal(pooledRate(rows, (ms) => ms + 500 <= 2500), 8);
  assert.equal(pooledRate(rows, (ms) => ms >= 4000), 2.5);
  assert.equal(pooledRate(rows, () => false), null);
});
