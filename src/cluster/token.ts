// The cluster token: given by the operator, or created by the master in
// <data-dir>/cluster.token (mode 0600) and read from there by slaves on the same machine.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** Master: the explicit token, else the token file, created on first start. */
export function masterToken(explicit: string | null, file: string): string {
  if (explicit) return explicit;
  try {
    return readToken(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const token = randomBytes(32).toString('hex');
  try {
    fs.writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // Another process created it first: use theirs.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return readToken(file);
    throw e;
  }
  return token;
}

/** Slave: the explicit token, else the token file, waiting up to `waitMs` for the master to create it. */
export async function slaveToken(explicit: string | null, file: string, waitMs: number): Promise<string> {
  if (explicit) return explicit;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return readToken(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || Date.now() > deadline) {
        throw new Error(
          `no cluster token: ${file} does not exist. Start the master with the same --data-dir first, or pass --cluster-token (SQLFLEET_CLUSTER_TOKEN).`,
        );
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function readToken(file: string): string {
  const t = fs.readFileSync(file, 'utf8').trim();
  if (!t) throw new Error(`${file} is empty`);
  return t;
}
