// Cluster-token checks for internal requests, in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { SqlfleetError } from '../errors.js';

/**
 * A checker for `Authorization: Bearer <cluster token>`. Both sides are compared as
 * sha256 digests (equal lengths, constant time); the token's digest is computed once.
 */
export function clusterTokenCheck(token: string): (authorization: string | undefined) => boolean {
  const want = createHash('sha256').update(token).digest();
  return (authorization) => {
    if (!authorization || !authorization.startsWith('Bearer ')) return false;
    return timingSafeEqual(createHash('sha256').update(authorization.slice(7)).digest(), want);
  };
}

/** The refusal of an internal endpoint (hono routes, the lane, the replication stream) without the cluster token. */
export function clusterTokenRequired(): SqlfleetError {
  return new SqlfleetError('UNAUTHORIZED', 'internal endpoint: a valid cluster token is required');
}
