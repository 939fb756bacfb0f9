// Builds dist/dashboard.js and dist/dashboard.css (uPlot and the page's own
// code and styles), committed so the collector serves them without Node.
// `node build.mjs --check` rebuilds in memory and fails when a committed file
// differs (deterministic: the same esbuild and uPlot from the lock file).
import {readFileSync, writeFileSync} from 'node:fs';
import {basename} from 'node:path';
import {gzipSync} from 'node:zlib';
import * as esbuild from 'esbuild';

export const DIST = new URL('./dist/', import.meta.url);
export const MAX_GZIP_BYTES = 42000; // the JS and the CSS together; issue 21 added its proof and objectives

export const options = {
  entryPoints: [new URL('./src/index.js', import.meta.url).pathname],
  entryNames: 'dashboard',
  outdir: DIST.pathname,
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  banner: {js: '/*! binome dashboard | uPlot (c) Leon Sorokin, MIT */', css: '/*! binome dashboard | uPlot (c) Leon Sorokin, MIT */'},
  charset: 'utf8',
  write: false,
  logLevel: 'warning',
};

/** @returns {Promise<Map<string, Uint8Array>>} file name -> bytes */
export const build = async () => {
  const result = await esbuild.build(options);
  return new Map(result.outputFiles.map((file) => [basename(file.path), file.contents]));
};

export const gzipSize = (bytes) => gzipSync(bytes, {level: 9}).length;

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = await build();
  let total = 0;
  for (const [name, bytes] of files) {
    const path = new URL(name, DIST);
    if (process.argv.includes('--check')) {
      let committed;
      try {
        committed = readFileSync(path);
      } catch {
        committed = Buffer.alloc(0);
      }
      if (!Buffer.from(bytes).equals(committed)) {
        console.error(`dist/${name} is stale: run \`npm run build\` and commit it`);
        process.exit(1);
      }
    } else {
      writeFileSync(path, bytes);
    }
    total += gzipSize(bytes);
    console.log(`dist/${name}: ${bytes.length} bytes, ${gzipSize(bytes)} gzipped`);
  }
  console.log(`total ${total} bytes gzipped (budget ${MAX_GZIP_BYTES})`);
  if (total > MAX_GZIP_BYTES) process.exit(1);
}
