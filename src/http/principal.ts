// Who is asking, decided from request headers alone, so the hono routes (app.ts) and the
// node:http lane (lane.ts) share one check: another node (cluster token, possibly on
// behalf of a user it authenticated), a user of --auth, or anyone when auth is off.
import { SqlfleetError } from '../errors.js';
import { ANONYMOUS_ADMIN, CLUSTER, hasRole, type Principal, type Role, type Users } from '../auth/users.js';

/** Reads one request header by its lower-case name. */
export type HeaderFn = (name: string) => string | undefined;

/** The Basic challenge a 401 carries for clients other than the console. */
export const CHALLENGE = 'Basic realm="sqlfleet", charset="UTF-8"';

/**
 * The principal of a request; throws UNAUTHORIZED or FORBIDDEN. `challenge` is called
 * with the WWW-Authenticate value to send when credentials are missing or wrong (the
 * console asks for them itself and gets none).
 */
export async function principalOf(
  users: Users | null,
  hasClusterToken: (authorization: string | undefined) => boolean,
  header: HeaderFn,
  challenge: (value: string) => void,
): Promise<Principal> {
  const authorization = header('authorization');
  if (hasClusterToken(authorization)) {
    const onBehalf = header('x-sqlfleet-user');
    if (!onBehalf || !users) return CLUSTER;
    const p = users.byUsername(onBehalf);
    if (!p) throw new SqlfleetError('FORBIDDEN', `user "${onBehalf}" is not known to this node`);
    return p;
  }
  if (!users) return ANONYMOUS_ADMIN;
  const p = await users.authenticate(authorization);
  if (!p) {
    if (!header('x-sqlfleet-console')) challenge(CHALLENGE);
    throw new SqlfleetError('UNAUTHORIZED', authorization ? 'wrong credentials' : 'credentials required: HTTP Basic or Bearer token');
  }
  return p;
}

/** Throws FORBIDDEN unless `p` holds `role`. */
export function requireRole(p: Principal, role: Role): void {
  if (!hasRole(p, role)) throw new SqlfleetError('FORBIDDEN', `user "${p.user}" (role ${p.role}) needs role ${role}`);
}
