// Loads the TypeScript read worker through tsx (worker threads do not inherit --import).
import { workerData } from 'node:worker_threads';

const { register } = await import('tsx/esm/api');
register();
await import(workerData.entry);
