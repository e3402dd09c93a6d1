// sqlfleet/client: `import { createClient } from 'sqlfleet/client'`. Talks the public HTTP
// API only (no server code), over undici.
import { Client } from './client.js';
import type { ClientConfig } from './types.js';

export { Client } from './client.js';
export { SqlfleetClientError, type ClientCode, type WriteOutcome } from './errors.js';
export type * from './types.js';

/** Creates a client for the cluster reachable at `config.urls`. */
export function createClient(config: ClientConfig): Client {
  return new Client(config);
}
