// Builds dist/binome.js. `node build.mjs --check` rebuilds in memory and
// fails when the committed file differs (the build is deterministic: same
// esbuild version from the lock file, same sources, same bytes).
import {readFileSync, writeFileSync} from 'node:fs';
import {gzipSync} from 'node:zlib';
import * as esbuild from 'esbuild';

export const OUTFILE = new URL('./dist/binome.js', import.meta.url);
// web-vitals 6 (soft navigations, issue 22) brought the budget from 5,000 to 6,000.
export const MAX_GZIP_BYTES = 6000;

export const options = {
  entryPoints: [new URL('./src/index.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'iife',
  // web-vitals 6 is published as ES2022 (class fields, `?.`, `??`) for
  // "Baseline Widely Available" browsers (its README, "Browser Support"):
  // not lowering it, nor Binome's code, keeps ~240 bytes gzipped out of the
  // snippet (issue 22).
  target: 'es2022',
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
