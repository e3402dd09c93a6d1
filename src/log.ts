// Structured JSON-lines logging to stdout, one object per event, tagged with the node id.

/** Log levels, lowest first. */
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/** A log level name. */
export type Level = keyof typeof LEVELS;

/** Writes one event. */
export type LogFn = (level: Level, msg: string, fields?: Record<string, unknown>) => void;

/** A logger bound to a node id that drops events below `min`. */
export function createLogger(node: number, min: string = 'info'): LogFn {
  const floor = LEVELS[(min in LEVELS ? min : 'info') as Level];
  return (level, msg, fields) => {
    if (LEVELS[level] < floor) return;
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, node, msg, ...fields }) + '\n');
  };
}
