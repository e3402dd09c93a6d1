// Bundles the read worker (read-worker.ts) to one CommonJS script with esbuild, so worker
// threads need no TypeScript loader. Plain JavaScript, so that both the read pool (running
// from the sources) and bin/sqlfleet.js (which prebuilds it beside the node's bundle) call
// this one function.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The worker's script text; better-sqlite3 stays external (resolved from this package).
 * @returns {string}
 */
export function bundleReadWorker() {
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild');
  const driver = require.resolve('better-sqlite3');
  const out = esbuild.buildSync({
    entryPoints: [fileURLToPath(new URL('./read-worker.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    alias: { 'better-sqlite3': driver },
    external: [driver],
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}
