// Prometheus text exposition of the node's replication state.

/** Inputs of the metrics page. */
export interface MetricsInput {
  node: number;
  role: string;
  appliedIndex: number;
  nodes: Record<string, unknown>[];
}

/** Renders GET /metrics in Prometheus text format. */
export function renderMetrics(m: MetricsInput): string {
  const lines = [
    '# HELP sqlfleet_applied_index Highest replication log index applied on this node.',
    '# TYPE sqlfleet_applied_index gauge',
    `sqlfleet_applied_index{node="${m.node}",role="${m.role}"} ${m.appliedIndex}`,
    '# HELP sqlfleet_node_lag Entries a node is behind the master, as this node sees it.',
    '# TYPE sqlfleet_node_lag gauge',
    ...m.nodes.map((n) => `sqlfleet_node_lag{id="${n.id}",state="${n.state}"} ${Number(n.lag ?? 0)}`),
    '# HELP sqlfleet_node_up 1 when a node is up.',
    '# TYPE sqlfleet_node_up gauge',
    ...m.nodes.map((n) => `sqlfleet_node_up{id="${n.id}"} ${n.state === 'up' ? 1 : 0}`),
  ];
  return lines.join('\n') + '\n';
}
