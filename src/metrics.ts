// Prometheus metrics (prom-client): requests, statement latency, log and applied index,
// per-slave lag and state, replication batch sizes, snapshot transfers.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the gauges read when Prometheus scrapes. */
export interface MetricsSource {
  appliedIndex: () => number;
  /** Reads answered on the event loop as lookups of one row by a unique key (no read worker). */
  pointReads: () => number;
  nodes: () => Record<string, unknown>[];
  /** etcd mode: the reason code while no node may take the leader key on its own, else null. */
  masterless?: () => string | null;
  /** The change feed: open GET /changes feeds, and the webhook's state when --cdc-url is set. */
  changes?: () => { feeds: number; webhook: { lag_entries: number; failures: number; events: number } | null };
}

const STATES = ['up', 'down', 'catching_up', 'diverged'] as const;

/** The metrics of one node, in its own registry. */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'code'>;
  private readonly latency: Histogram<'class'>;
  private readonly batches: Histogram;
  private readonly groups: Histogram;
  private readonly snapshots: Counter<'direction' | 'result'>;

  constructor(node: number, role: string, src: MetricsSource) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: String(node), role });
    collectDefaultMetrics({ register: this.registry, prefix: 'sqlfleet_process_' });
    this.requests = new Counter({ name: 'sqlfleet_http_requests_total', help: 'HTTP requests by route and error code (ok when none).', labelNames: ['route', 'code'], registers });
    this.latency = new Histogram({
      name: 'sqlfleet_statement_seconds',
      help: 'Time to answer a SQL request, by statement class (read, write, schema, forwarded).',
      labelNames: ['class'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.batches = new Histogram({ name: 'sqlfleet_replication_batch_entries', help: 'Entries per batch shipped to or applied by a slave.', buckets: [1, 2, 5, 10, 50, 100, 500, 1000], registers });
    this.groups = new Histogram({ name: 'sqlfleet_commit_group_writes', help: 'Client writes per SQLite commit on the master (group commit of concurrent writes).', buckets: [1, 2, 4, 8, 16, 32, 64], registers });
    this.snapshots = new Counter({ name: 'sqlfleet_snapshot_transfers_total', help: 'Snapshots sent (master) or installed (slave).', labelNames: ['direction', 'result'], registers });
    new Counter({
      name: 'sqlfleet_point_reads_total',
      help: 'Reads answered on the event loop as one lookup by a unique key, without a read worker.',
      registers,
      collect() {
        this.reset();
        this.inc(src.pointReads());
      },
    });
    new Gauge({ name: 'sqlfleet_applied_index', help: 'Highest log index applied on this node.', registers, collect() { this.set(src.appliedIndex()); } });
    new Gauge({
      name: 'sqlfleet_node_lag_entries',
      help: 'Entries each node is behind the master, as this node sees it.',
      labelNames: ['id'],
      registers,
      collect() {
        this.reset();
        for (const n of src.nodes()) this.set({ id: String(n.id) }, Number(n.lag ?? 0));
      },
    });
    new Gauge({
      name: 'sqlfleet_ha_masterless',
      help: 'etcd mode: 1 while there is no master and no node may take the leader key on its own, by reason (sync_set_empty, sync_members_gone); npm run promote -- <id> --force is the way out.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const r = src.masterless?.();
        if (r) this.set({ reason: r }, 1);
      },
    });
    new Gauge({ name: 'sqlfleet_changes_feeds', help: 'Open GET /changes feeds on this node.', registers, collect() { this.set(src.changes?.().feeds ?? 0); } });
    new Gauge({
      name: 'sqlfleet_cdc_lag_entries',
      help: 'Change webhook: log entries applied here past the last delivered event (the delivered mark is replicated, so every node reports it).',
      registers,
      collect() {
        const w = src.changes?.().webhook;
        if (w) this.set(w.lag_entries);
      },
    });
    new Counter({
      name: 'sqlfleet_cdc_failures_total',
      help: 'Change webhook: failed deliveries (non-2xx, timeout, unreachable) by this node while master.',
      registers,
      collect() {
        this.reset();
        this.inc(src.changes?.().webhook?.failures ?? 0);
      },
    });
    new Counter({
      name: 'sqlfleet_cdc_delivered_events_total',
      help: 'Change webhook: events delivered by this node while master.',
      registers,
      collect() {
        this.reset();
        this.inc(src.changes?.().webhook?.events ?? 0);
      },
    });
    new Gauge({
      name: 'sqlfleet_node_state',
      help: '1 for the state each node is in (up, down, catching_up, diverged).',
      labelNames: ['id', 'state'],
      registers,
      collect() {
        this.reset();
        for (const n of src.nodes()) for (const s of STATES) this.set({ id: String(n.id), state: s }, n.state === s ? 1 : 0);
      },
    });
  }

  /** Counts one HTTP request. */
  request(route: string, code: string): void {
    this.requests.inc({ route, code });
  }

  /** Records how long a SQL request took. */
  statement(cls: string, seconds: number): void {
    this.latency.observe({ class: cls }, seconds);
  }

  /** Records a replication batch size. */
  batch(entries: number): void {
    this.batches.observe(entries);
  }

  /** Records how many writes one commit of the master carried. */
  commitGroup(writes: number): void {
    this.groups.observe(writes);
  }

  /** Counts a snapshot transfer. */
  snapshot(direction: 'sent' | 'installed', ok: boolean): void {
    this.snapshots.inc({ direction, result: ok ? 'ok' : 'error' });
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content type of render(). */
  get contentType(): string {
    return this.registry.contentType;
  }
}
