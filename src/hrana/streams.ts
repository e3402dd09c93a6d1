// Open Hrana streams of one node: limits (per node, per user), batons, idle expiry.
import { SqlfleetError } from '../errors.js';
import type { Principal } from '../auth/users.js';
import type { Session } from '../core/session.js';
import { randomText } from '../random.js';

/** One stream: a session, its stored SQL texts, and the chain that runs its requests one at a time. */
export interface HStream {
  readonly id: number;
  readonly session: Session;
  readonly sqls: Map<number, string>;
  readonly user: string;
  baton: string | null;
  lastUsed: number;
  /** Requests of a stream run in order; this resolves when the last queued one is done. */
  chain: Promise<unknown>;
  closed: boolean;
}

/** Limits and clock of the registry. */
export interface StreamLimits {
  maxStreams: number;
  maxStreamsPerUser: number;
  idleMs: number;
}

/** The open streams of this node. */
export class Streams {
  private readonly byId = new Map<number, HStream>();
  private readonly perUser = new Map<string, number>();
  private nextId = 1;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly limits: StreamLimits,
    private readonly newSession: (who: Principal, stamp?: number) => Session,
    /** Refuses a pipeline a slave relayed to the master of an epoch this node knows ended (executor.ts fenceForwarded). */
    readonly fence: (stamp: number) => void = () => undefined,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, limits.idleMs / 2));
    this.sweeper.unref();
  }

  /** Streams open now. */
  get size(): number {
    return this.byId.size;
  }

  /** Opens a stream for `who`; STREAM_LIMIT when this node or this user has too many. */
  open(who: Principal, stamp?: number): HStream {
    if (this.byId.size >= this.limits.maxStreams) {
      throw new SqlfleetError('UNAVAILABLE', `too many open streams on this node (--max-streams ${this.limits.maxStreams})`, { hrana_code: 'STREAMS_EXCEEDED' });
    }
    const n = this.perUser.get(who.user) ?? 0;
    if (!who.cluster && n >= this.limits.maxStreamsPerUser) {
      throw new SqlfleetError('FORBIDDEN', `user "${who.user}" has too many open streams (--max-streams-per-user ${this.limits.maxStreamsPerUser})`, { hrana_code: 'STREAMS_EXCEEDED' });
    }
    const s: HStream = { id: this.nextId++, session: this.newSession(who, stamp), sqls: new Map(), user: who.user, baton: null, lastUsed: Date.now(), chain: Promise.resolve(), closed: false };
    this.byId.set(s.id, s);
    this.perUser.set(who.user, n + 1);
    return s;
  }

  /** A new baton for the stream's next request (the previous one stops working). */
  issueBaton(s: HStream): string {
    s.baton = `${s.id}.${randomText(16, 'base64url')}`;
    return s.baton;
  }

  /** The stream a baton designates; STREAM_EXPIRED (sqld's wording) when it is unknown, used or expired. */
  byBaton(baton: string, who: Principal): HStream {
    const s = this.byId.get(Number(baton.split('.')[0]));
    if (!s || s.baton !== baton || s.closed) {
      throw new SqlfleetError('BAD_REQUEST', 'the stream has expired or the baton is not valid (streams expire after --stream-idle ms, transactions after --tx-timeout)', { hrana_code: 'STREAM_EXPIRED' });
    }
    if (s.user !== who.user) throw new SqlfleetError('FORBIDDEN', 'this stream belongs to another user');
    s.baton = null; // one request per baton
    return s;
  }

  /** Closes a stream: its open transaction rolls back. */
  async close(s: HStream): Promise<void> {
    if (s.closed) return;
    s.closed = true;
    s.baton = null;
    this.byId.delete(s.id);
    const n = (this.perUser.get(s.user) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(s.user);
    else this.perUser.set(s.user, n);
    await s.session.close();
  }

  /** Closes every stream (the node stops). */
  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.byId.values()].map((s) => this.close(s)));
  }

  private sweep(): void {
    const now = Date.now();
    for (const s of this.byId.values()) {
      // A stream whose baton is out (the client holds it) and that saw nothing for idleMs.
      if (s.baton !== null && now - s.lastUsed > this.limits.idleMs) void this.close(s);
    }
  }
}
