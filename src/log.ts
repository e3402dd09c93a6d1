// Structured logging (pino): JSON lines with the node id; readable output on a terminal
// or with --pretty. The rest of the code sees only LogFn, so the logger stays swappable.
import pino from 'pino';

/** Log levels, lowest first. */
export type Level = 'debug' | 'info' | 'warn' | 'error';

/** Writes one event. `debugOn` false: debug events are dropped (callers may skip building them). */
export type LogFn = ((level: Level, msg: string, fields?: Record<string, unknown>) => void) & { debugOn?: boolean };

/** A logger bound to a node id, dropping events below `min`. */
export function createLogger(node: number, min: string = 'info', pretty = false): LogFn {
  const logger = pino({
    level: ['debug', 'info', 'warn', 'error'].includes(min) ? min : 'info',
    base: { node },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY, ignore: 'pid,hostname' } } } : {}),
  });
  const log: LogFn = (level, msg, fields) => (fields ? logger[level](fields, msg) : logger[level](msg));
  log.debugOn = logger.isLevelEnabled('debug');
  return log;
}
