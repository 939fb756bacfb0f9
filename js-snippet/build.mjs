// Builds dist/binome.js. `node build.mjs --check` rebuilds in memory and
// fails when the committed file differs (the build is deterministic: same
// esbuild version from the lock file, same sources, same bytes).
import {readFileSync, writeFileSync} from 'node:fs';
import {gzipSync} from 'node:zlib';
import * as esbuild from 'esbuild';

export const OUTFILE = new URL('./dist/binome.js', import.meta.url);
export const MAX_GZIP_BYTES = 5000;

export const options = {
  entryPoints: [new URL('./src/index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'iife',
  // Object spread (web-vitals' own code) needs ES2018: every browser since
  // 2018 runs it natively, and not lowering it saves ~80 bytes gzipped.
  // web-vitals itself is published as ES2020 (`?.`, `??`), lowered here.
  target: 'es2018',
  // Only internal state (`_`-prefixed) is renamed: beacon fields are the
  // collector's contract and must keep their names.
  mangleProps: /^_/,
  legalComments: 'none',
  banner: {js: '/*! binome | web-vitals (c) Google LLC, Apache-2.0 */'},
  charset: 'utf8',
  write: false,
  logLevel: 'warning',
};

export const build = async () => (await esbuild.build(options)).outputFiles[0].contents;

export const gzipSize = (bytes) => gzipSync(bytes, {level: 9}).length;

if (import.meta.url === `file://${process.argv[1]}`) {
  const bytes = await build();
  if (process.argv.includes('--check')) {
    if (!Buffer.from(bytes).equals(readFileSync(OUTFILE))) {
      console.error('dist/binome.js is stale: run `npm run build` and commit it');
      process.exit(1);
    }
  } else {
    writeFileSync(OUTFILE, bytes);
  }
  const gz = gzipSize(bytes);
  console.log(`dist/binome.js: ${bytes.length} bytes, ${gz} gzipped (budget ${MAX_GZIP_BYTES})`);
  if (gz > MAX_GZIP_BYTES) process.exit(1);
}
