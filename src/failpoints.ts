// Failpoints: named places where a test makes a node fail on purpose, to prove that an
// error there is handled and the node goes on serving (SQLFLEET_FAILPOINTS, read by cli.ts:
// `name` fails every time, `name:N` the first N times). Off, a failpoint is one Set lookup.
const active = new Map<string, number>();

/** Arms failpoints from a comma-separated list (`verify,shipper.build:2`). */
export function armFailpoints(spec: string): void {
  for (const part of spec.split(',')) {
    const [name, times] = part.trim().split(':');
    if (name) active.set(name, times === undefined ? Infinity : Math.max(0, Number(times) || 0));
  }
}

/** Throws an Error named after the failpoint when it is armed (and has failures left). */
export function failpoint(name: string): void {
  if (active.size === 0) return;
  const left = active.get(name);
  if (left === undefined || left <= 0) return;
  active.set(name, left - 1);
  throw new Error(`failpoint ${name}`);
}
