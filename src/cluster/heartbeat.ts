// Slave side of liveness: reports this node's URL and applied index to the master at a
// fixed interval, and keeps the master's answer (the cluster view) for /status.

/** The master's answer to a heartbeat. */
export interface HeartbeatAnswer {
  ok: boolean;
  epoch?: number;
  master_index?: number;
  nodes?: Record<string, unknown>[];
  /** The master's last checksum comparison of each slave. */
  verified?: unknown[];
  error?: { code: string; message: string };
}

/** What the heartbeat loop needs. */
export interface HeartbeatDeps {
  intervalMs: number;
  send: () => Promise<HeartbeatAnswer>;
  onAnswer: (a: HeartbeatAnswer) => void;
  onFailure: (err: unknown) => void;
}

/** Sends heartbeats until stopped; one in flight at a time. */
export class Heartbeat {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Wall-clock ms of the last answered heartbeat; 0 = never. */
  lastOk = 0;

  constructor(private readonly d: HeartbeatDeps) {}

  /** Starts beating now. */
  start(): void {
    void this.beat();
  }

  /** Stops the loop. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async beat(): Promise<void> {
    if (this.stopped) return;
    try {
      const a = await this.d.send();
      this.lastOk = Date.now();
      this.d.onAnswer(a);
    } catch (e) {
      this.d.onFailure(e);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.beat(), this.d.intervalMs);
  }
}
