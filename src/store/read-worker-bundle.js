// Bundles the read worker (read-worker.ts) to one CommonJS script with esbuild, so worker
// threads need no TypeScript loader. Plain JavaScript, so that both the read pool (running
// from the sources) and bin/sqlfleet.js (which prebuilds it beside the node's bundle) call
// this one function.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The worker's script text. It embeds no path: the worker requires better-sqlite3 by the
 * absolute path the main thread resolved (workerData.driver, see driver.ts), so a bundle
 * copied or moved with its node_modules still loads this installation's driver.
 * @returns {string}
 */
export function bundleReadWorker() {
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild');
  const out = esbuild.buildSync({
    entryPoints: [fileURLToPath(new URL('./read-worker.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    write: false,
    external: ['better-sqlite3'], // type imports only; a value import would fail loudly, not load a second copy
    logLevel: 'silent',
  });
  return out.outputFiles[0].text;
}
