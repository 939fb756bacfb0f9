// The committed dist/binome.js is exactly what the sources build to, fits the
// size budget, and keeps every beacon field name unmangled.
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {test} from 'node:test';
import {MAX_GZIP_BYTES, OUTFILE, build, gzipSize} from '../build.mjs';

const dist = readFileSync(OUTFILE);

test('rebuilding produces exactly the committed dist/binome.js', async () => {
  const rebuilt = Buffer.from(await build());
  assert.ok(rebuilt.equals(dist), 'dist/binome.js is stale: run `npm run build` and commit it');
});

test(`gzip -9 of dist/binome.js is at most ${MAX_GZIP_BYTES} bytes`, (t) => {
  const size = gzipSize(dist);
  t.diagnostic(`${dist.length} bytes, ${size} bytes gzip -9 (zlib)`);
  assert.ok(size <= MAX_GZIP_BYTES, `${size} bytes`);
  let cli;
  try {
    cli = execFileSync('gzip', ['-9', '-c', OUTFILE.pathname]).length;
  } catch {
    return t.diagnostic('no gzip command: zlib size only');
  }
  t.diagnostic(`${cli} bytes with the gzip command`);
  assert.ok(cli <= MAX_GZIP_BYTES, `${cli} bytes`);
});

test('beacon field names survive minification', () => {
  const text = dist.toString();
  const fields = [
    'v', 'consent', 'site', 'pv', 'seq', 't0', 'sid', 'url', 'ref', 'release', 'dims', 'device', 'nav', 'metrics', 'events',
    'vw', 'vh', 'dpr', 'mem', 'cpus', 'ect', 'rtt', 'downlink', 'save_data',
    'type', 'dns', 'connect', 'tls', 'ttfb', 'dom_interactive', 'dcl', 'load', 'transfer_size', 'protocol',
    'name', 'value', 'id', 'delta', 'rating', 'navigationType', 'attribution', 'target', 'currency',
  ];
  for (const field of fields) assert.match(text, new RegExp(`[{,]${field}:`), field);
});

test('a single IIFE that starts with the license banner', () => {
  const text = dist.toString();
  assert.match(text, /^\/\*! binome \| web-vitals \(c\) Google LLC, Apache-2\.0 \*\/\n("use strict";)?\(\(\)=>\{/);
  assert.ok(text.trimEnd().endsWith('})();'));
});
