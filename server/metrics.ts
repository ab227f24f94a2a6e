// Prometheus metrics: hook calls and latency by hook and outcome, tokens minted, errors
// by reason, and each request's token lifetime, so alerts can fire before a token expires.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SyncResponse } from './metacontroller.js';

export class Metrics {
  readonly registry = new Registry();
  private readonly hookCalls = new Counter({
    name: 'dpu_credential_hook_requests_total', help: 'Hook calls by hook and outcome.',
    labelNames: ['hook', 'outcome'] as const, registers: [this.registry],
  });
  private readonly hookDuration = new Histogram({
    name: 'dpu_credential_hook_duration_seconds', help: 'Hook latency by hook and outcome.',
    labelNames: ['hook', 'outcome'] as const, registers: [this.registry],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
  private readonly tokensMinted = new Counter({
    name: 'dpu_credential_tokens_minted_total', help: 'Tokens minted through the TokenRequest API.', registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'dpu_credential_hook_errors_total', help: 'Hook calls that ended in a failing condition or HTTP error, by reason.',
    labelNames: ['reason'] as const, registers: [this.registry],
  });
  private readonly tokenExpiry = new Gauge({
    name: 'dpu_credential_token_expiration_timestamp_seconds', help: 'When the token of each request expires (Unix seconds).',
    labelNames: ['namespace', 'name'] as const, registers: [this.registry],
  });
  private readonly tokenIssued = new Gauge({
    name: 'dpu_credential_token_issued_timestamp_seconds', help: 'When the token of each request was issued (Unix seconds).',
    labelNames: ['namespace', 'name'] as const, registers: [this.registry],
  });

  private readonly apiCalls = new Counter({
    name: 'dpu_credential_kube_requests_total', help: 'Calls to Kubernetes API servers by cluster (host, target), method and HTTP status (0: unreachable).',
    labelNames: ['cluster', 'method', 'code'] as const, registers: [this.registry],
  });

  /** For ClusterOptions.observeApiCall. */
  readonly observeApiCall = (cluster: 'host' | 'target', method: string, statusCode: number): void => {
    this.apiCalls.inc({ cluster, method, code: String(statusCode) });
  };

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  observeHook(hook: string, outcome: string, durationMs: number, errorReason?: string): void {
    this.hookCalls.inc({ hook, outcome });
    this.hookDuration.observe({ hook, outcome }, durationMs / 1_000);
    if (outcome === 'minted') this.tokensMinted.inc();
    if (errorReason) this.errors.inc({ reason: errorReason });
  }

  /** A hook call answered with an HTTP error: no latency worth recording, but counted. */
  observeRejected(hook: string, outcome: 'bad_request' | 'internal_error'): void {
    this.hookCalls.inc({ hook, outcome });
    this.errors.inc({ reason: outcome === 'bad_request' ? 'BadRequest' : 'InternalError' });
  }

  /** Tracks the token a sync answered with; a finalized request is forgotten. */
  observeToken(namespace: string, name: string, response: SyncResponse): void {
    const labels = { namespace, name };
    const { issuedAt, expirationTimestamp } = response.status;
    if (response.finalized || !issuedAt || !expirationTimestamp || response.children.length === 0) {
      this.tokenExpiry.remove(labels);
      this.tokenIssued.remove(labels);
      return;
    }
    this.tokenExpiry.set(labels, Date.parse(expirationTimestamp) / 1_000);
    this.tokenIssued.set(labels, Date.parse(issuedAt) / 1_000);
  }
}
