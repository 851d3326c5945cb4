/** Prometheus metrics of the relayer (prom-client), served at GET /metrics. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class RelayerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "opg_relayer_http_requests_total",
    help: "HTTP requests by route and status code",
    labelNames: ["route", "status"] as const,
    registers: [this.registry],
  });
  readonly submitLatency = new Histogram({
    name: "opg_relayer_submit_latency_seconds",
    help: "POST /v1/inferences: request in to signed receipt out (inference, enclave check, durable write)",
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly anchorLatency = new Histogram({
    name: "opg_relayer_anchor_latency_seconds",
    help: "Batch cut to anchoring transaction confirmed",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly verifications = new Counter({
    name: "opg_relayer_verifications_total",
    help: "Enclave checks by result (agree, disagree, not_selected)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly batches = new Counter({
    name: "opg_relayer_batches_anchored_total",
    help: "Batches anchored",
    registers: [this.registry],
  });
  readonly receiptsAnchored = new Counter({
    name: "opg_relayer_receipts_anchored_total",
    help: "Receipts in anchored batches",
    registers: [this.registry],
  });
  readonly gasSpent = new Counter({
    name: "opg_relayer_gas_used_total",
    help: "Gas used by the relayer's transactions, by kind",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: "opg_relayer_failures_total",
    help: "Failures by stage (infer, enclave, store, batch, anchor, listener, fulfil, evidence)",
    labelNames: ["stage"] as const,
    registers: [this.registry],
  });
  /** Set by the service: the age (seconds) of the oldest receipt not yet anchored, at scrape time. */
  oldestUnanchoredSource: (() => number) | null = null;
  readonly oldestUnanchored: Gauge;
  /** Set by the service: reads the queue depths from the store at scrape time. */
  queueSource: (() => Record<string, number>) | null = null;
  readonly queueDepth: Gauge<"queue">;
  readonly listenerCursor = new Gauge({
    name: "opg_relayer_listener_block",
    help: "Last block the listener has fully processed",
    registers: [this.registry],
  });

  constructor(defaults = true) {
    const source = () => this.queueSource?.() ?? {};
    this.queueDepth = new Gauge({
      name: "opg_relayer_queue_depth",
      help: "Work waiting, by queue (unbatched receipts, open batches, chain requests)",
      labelNames: ["queue"] as const,
      registers: [this.registry],
      collect() {
        for (const [queue, depth] of Object.entries(source())) this.set({ queue }, depth);
      },
    });
    const oldest = () => this.oldestUnanchoredSource?.() ?? 0;
    this.oldestUnanchored = new Gauge({
      name: "opg_relayer_oldest_unanchored_seconds",
      help: "Age of the oldest accepted receipt that is not anchored yet (0: none waits)",
      registers: [this.registry],
      collect() {
        this.set(oldest());
      },
    });
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: "opg_relayer_" });
  }
}
