// Client authentication: a users file with hashed secrets and roles (read < write < admin).
// Passwords are scrypt-hashed (node:crypto); API tokens, being long random strings, are
// stored as sha256. Comparisons are constant-time.
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import fs from 'node:fs';

/** A role; each includes the ones before it. */
export type Role = 'read' | 'write' | 'admin';

const RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 };

/** Who sent a request. `cluster` is another node holding the cluster token. */
export interface Principal {
  readonly user: string;
  readonly role: Role;
  readonly cluster: boolean;
}

/** Everyone, when auth is off. */
export const ANONYMOUS_ADMIN: Principal = Object.freeze({ user: 'anonymous', role: 'admin', cluster: false });
/** Another node of the cluster. */
export const CLUSTER: Principal = Object.freeze({ user: 'cluster', role: 'admin', cluster: true });

/** True when `p` holds at least `role`. */
export function hasRole(p: Principal, role: Role): boolean {
  return RANK[p.role] >= RANK[role];
}

interface UserEntry {
  username: string;
  password?: string;
  tokens?: string[];
  role: Role;
}

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (e, k) => (e ? reject(e) : resolve(k))));
}

/** Hashes a password for the users file: `scrypt$N$r$p$salt$hash` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const N = 16384, r = 8, p = 1;
  const key = await scrypt(password, salt, 32, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A new API token and the line to store for it (`sha256:<hex>`). */
export function newToken(): { token: string; stored: string } {
  // Never a leading '-': `npm run shell -- --token -x…` reads that as an option (1 token in 64).
  let token: string;
  do token = randomBytes(24).toString('base64url');
  while (token.startsWith('-'));
  return { token, stored: `sha256:${sha256(token).toString('hex')}` };
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, N, r, p, salt, hash] = parts;
  const want = Buffer.from(hash, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), want.length, { N: Number(N), r: Number(r), p: Number(p), maxmem: 256 * Number(N) * Number(r) });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The users of a node, loaded once from `--auth <file>`. */
export class Users {
  private readonly byName = new Map<string, UserEntry>();
  private readonly byToken = new Map<string, UserEntry>();
  /** sha256(header) -> principal, so scrypt runs once per credential, not per request. */
  private readonly verified = new Map<string, { p: Principal; until: number }>();

  constructor(entries: UserEntry[]) {
    for (const u of entries) {
      this.byName.set(u.username, u);
      for (const t of u.tokens ?? []) this.byToken.set(t.replace(/^sha256:/, '').toLowerCase(), u);
    }
  }

  /** Reads and validates the users file; throws a readable Error. */
  static load(file: string): Users {
    let doc: unknown;
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`--auth ${file}: ${(e as Error).message}`);
    }
    const list = (doc as { users?: unknown })?.users;
    if (!Array.isArray(list) || list.length === 0) throw new Error(`--auth ${file}: expected {"users": [ ... ]}`);
    const entries = list.map((u, i) => {
      const e = u as Record<string, unknown>;
      if (typeof e.username !== 'string' || !e.username) throw new Error(`--auth ${file}: users[${i}].username missing`);
      if (!['read', 'write', 'admin'].includes(e.role as string)) throw new Error(`--auth ${file}: users[${i}].role must be read, write or admin`);
      if (e.password !== undefined && (typeof e.password !== 'string' || !e.password.startsWith('scrypt$'))) {
        throw new Error(`--auth ${file}: users[${i}].password must be a scrypt hash (npm run sqlfleet -- hash-password); plain text is refused`);
      }
      const tokens = (e.tokens ?? []) as unknown[];
      if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string' || !/^sha256:[0-9a-f]{64}$/i.test(t))) {
        throw new Error(`--auth ${file}: users[${i}].tokens must be "sha256:<hex>" strings (npm run sqlfleet -- new-token)`);
      }
      return { username: e.username, password: e.password as string | undefined, tokens: tokens as string[], role: e.role as Role };
    });
    return new Users(entries);
  }

  /** The principal named by a slave forwarding its client's identity. */
  byUsername(name: string): Principal | null {
    const u = this.byName.get(name);
    return u ? { user: u.username, role: u.role, cluster: false } : null;
  }

  /** Checks `Authorization: Basic ...` or `Bearer <token>`; null when missing or wrong. */
  async authenticate(header: string | undefined): Promise<Principal | null> {
    if (!header) return null;
    const key = sha256(header).toString('hex');
    const hit = this.verified.get(key);
    if (hit && hit.until > Date.now()) return hit.p;
    const p = await this.check(header);
    if (p) {
      if (this.verified.size > 10_000) this.verified.clear();
      this.verified.set(key, { p, until: Date.now() + 5 * 60_000 });
    }
    return p;
  }

  private async check(header: string): Promise<Principal | null> {
    if (header.startsWith('Bearer ')) {
      const digest = sha256(header.slice(7).trim());
      const u = this.byToken.get(digest.toString('hex'));
      // Map lookup by digest leaks nothing useful: the digest of a guess reveals nothing of a valid token.
      return u ? { user: u.username, role: u.role, cluster: false } : null;
    }
    if (header.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return null;
      const u = this.byName.get(decoded.slice(0, colon));
      const password = decoded.slice(colon + 1);
      // Unknown users still pay for one scrypt, so timing does not reveal which names exist.
      const stored = u?.password ?? DUMMY_HASH;
      const ok = await verifyPassword(password, stored);
      return ok && u?.password ? { user: u.username, role: u.role, cluster: false } : null;
    }
    return null;
  }
}

const DUMMY_HASH = `scrypt$16384$8$1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
