// The page's filters live in its URL; the token never does (the sign-in's cookie carries it).
import assert from 'node:assert/strict';
import {test} from 'node:test';
import {DataError, fetchScorecard, filtersFromSearch, hrefFor} from '../src/api.js';
import {bucketLabel, pooledRate} from '../src/speed.js';
import {formatter} from '../src/format.js';

test('filters from and to the URL, keeping its other parameters', () => {
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

test('the data request carries the cookie, never a token from the URL', async (t) => {
  const calls = [];
  t.mock.method(globalThis, 'fetch', async (url, init) => {
    calls.push([String(url), init]);
    return new Response('{}', {status: 200});
  });
  await fetchScorecard({site: 'shop'}, 'http://h/dashboard?token=x');
  assert.equal(calls[0][0], 'http://h/dashboard/data?site=shop');
  assert.equal(calls[0][1].credentials, 'same-origin');
  assert.equal(calls[0][1].headers, undefined);
});

test('a refusal keeps its status, and the endpoint\'s detail when it gave one', async (t) => {
  const answers = [new Response('{"error": "bad_filter", "detail": "from: after to"}', {status: 400}),
    new Response('<html>bad gateway</html>', {status: 502})];
  t.mock.method(globalThis, 'fetch', async () => answers.shift());
  for (const [status, detail] of [[400, 'from: after to'], [502, null]]) {
    const error = await fetchScorecard({}, 'http://h/dashboard?token=x').catch((e) => e);
    assert.ok(error instanceof DataError);
    assert.equal(error.status, status);
    assert.equal(error.detail, detail);
  }
});
