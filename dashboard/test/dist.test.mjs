// The committed dist/ is exactly what the sources build to, within its budget,
// and loads nothing from elsewhere.
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {test} from 'node:test';
import {DIST, MAX_GZIP_BYTES, build, gzipSize} from '../build.mjs';

test('rebuilding produces exactly the committed dist/ files', async () => {
  const files = await build();
  assert.deepEqual([...files.keys()].sort(), ['dashboard.css', 'dashboard.js']);
  for (const [name, bytes] of files) {
    assert.ok(Buffer.from(bytes).equals(readFileSync(new URL(name, DIST))), `dist/${name} is stale: run \`npm run build\` and commit it`);
  }
});

test(`dist/ is at most ${MAX_GZIP_BYTES} bytes gzipped`, (t) => {
  const size = ['dashboard.js', 'dashboard.css'].reduce((n, name) => n + gzipSize(readFileSync(new URL(name, DIST))), 0);
  t.diagnostic(`${size} bytes gzip -9`);
  assert.ok(size <= MAX_GZIP_BYTES, `${size} bytes`);
});

test('no URL of another origin in the bundle', () => {
  for (const name of ['dashboard.js', 'dashboard.css']) {
    const text = readFileSync(new URL(name, DIST), 'utf8');
    assert.doesNotMatch(text, /(?:src|href|url)\s*[(=:]\s*["']?(?:https?:)?\/\//i, name);
    assert.doesNotMatch(text, /@import|fonts\.googleapis|cdn\./i, name);
  }
});
