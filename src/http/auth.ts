// Cluster-token checks for internal requests, in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';

/** True when the request's `Authorization: Bearer <token>` equals the cluster token. */
export function hasClusterToken(authorization: string | undefined, token: string): boolean {
  if (!authorization || !authorization.startsWith('Bearer ')) return false;
  const given = createHash('sha256').update(authorization.slice(7)).digest();
  const want = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, want);
}
