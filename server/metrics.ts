// Prometheus metrics: hook calls and latency by hook and outcome, tokens minted, errors
// by reason, and each request's token lifetime, so alerts can fire before a token expires.
import { setImmediate } from 'node:timers/promises';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { SyncResponse } from './metacontroller.js';

/**
 * A request this process has not synced for this long is forgotten at the next scrape:
 * another replica serves it, or it was deleted and another replica ran the finalize.
 * Metacontroller resyncs every live request every 5 minutes (resyncPeriodSeconds), so a
 * request still being synced keeps a fresh series on some replica.
 */
export const forgetTokenAfterSeconds = 15 * 60;

/** A request's token as this process last answered it; times in Unix seconds. */
interface TrackedToken {
  namespace: string;
  name: string;
  issuedAt: number;
  expiresAt: number;
  lastSyncAt: number;
  /** The status's dates as answered, so that a sync answering the same ones does not parse them again. */
  issuedText: string;
  expiresText: string;
}

export interface MetricsOptions {
  /** Milliseconds since the epoch; tests pass a fake clock. */
  now?: () => number;
}

/**
 * Per request, the token this replica last answered it with. Each replica exports what it
 * answered; the alert combines the replicas (deploy/monitoring).
 */
const tokenGauges: readonly { name: string; help: string; valueOf: (token: TrackedToken) => number }[] = [
  {
    name: 'dpu_credential_token_expiration_timestamp_seconds',
    help: 'When the token this replica last answered a request with expires (Unix seconds).', valueOf: (token) => token.expiresAt,
  },
  {
    name: 'dpu_credential_token_issued_timestamp_seconds',
    help: 'When the token this replica last answered a request with was issued (Unix seconds).', valueOf: (token) => token.issuedAt,
  },
  {
    name: 'dpu_credential_token_last_sync_timestamp_seconds',
    help: 'When this replica last answered a sync of the request (Unix seconds).', valueOf: (token) => token.lastSyncAt,
  },
];

/** Series written between two turns of the event loop: a few milliseconds' work. */
const seriesPerChunk = 250;

/** The exposition format's escapes for a label value. */
const labelValue = (value: string) => value.replace(/[\\"\n]/g, (character) => (character === '\n' ? '\\n' : `\\${character}`));

export class Metrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly tokens = new Map<string, TrackedToken>();
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
  private readonly apiCalls = new Counter({
    name: 'dpu_credential_kube_requests_total', help: 'Calls to Kubernetes API servers by cluster (host, target), method and HTTP status (0: unreachable).',
    labelNames: ['cluster', 'method', 'code'] as const, registers: [this.registry],
  });

  /** For ClusterOptions.observeApiCall. */
  readonly observeApiCall = (cluster: 'host' | 'target', method: string, statusCode: number): void => {
    this.apiCalls.inc({ cluster, method, code: String(statusCode) });
  };

  constructor(options: MetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric's name, the per-request token gauges included. */
  async metricNames(): Promise<string[]> {
    return [...(await this.registry.getMetricsAsJSON()).map((metric) => metric.name), ...tokenGauges.map((gauge) => gauge.name)];
  }

  /**
   * The text a scrape gets: the registry's metrics, then the token gauges, written a chunk
   * of requests at a time with the event loop free in between. At 10,000 requests the token
   * gauges are 30,000 series; as prom-client gauges they held the event loop for 120 to 390 ms
   * per scrape, longer than a health probe should wait.
   */
  async exposition(): Promise<string> {
    this.forgetStaleTokens();
    const parts = [await this.registry.metrics()];
    const tokens = [...this.tokens.values()];
    for (const gauge of tokenGauges) {
      parts.push(`\n# HELP ${gauge.name} ${gauge.help}\n# TYPE ${gauge.name} gauge\n`);
      for (let start = 0; start < tokens.length; start += seriesPerChunk) {
        if (start > 0) await setImmediate();
        let chunk = '';
        for (const token of tokens.slice(start, start + seriesPerChunk)) {
          chunk += `${gauge.name}{namespace="${labelValue(token.namespace)}",name="${labelValue(token.name)}"} ${gauge.valueOf(token)}\n`;
        }
        parts.push(chunk);
      }
    }
    return parts.join('');
  }

  private forgetStaleTokens(): void {
    const staleBefore = this.now() / 1_000 - forgetTokenAfterSeconds;
    for (const [key, token] of this.tokens) {
      if (token.lastSyncAt < staleBefore) this.tokens.delete(key);
    }
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

  /**
   * Tracks the token a sync answered with, and when. A request being deleted (any finalize
   * answer) or left without a token is forgotten here; another replica forgets it when
   * it goes stale.
   */
  observeToken(namespace: string, name: string, response: SyncResponse): void {
    // Unambiguous whatever the names hold (the namespace's length first), and cheaper than JSON.
    const key = `${namespace.length}/${namespace}/${name}`;
    const { issuedAt: issuedText = '', expirationTimestamp: expiresText = '' } = response.status;
    const known = this.tokens.get(key);
    if (response.finalized === undefined && known?.issuedText === issuedText && known.expiresText === expiresText) {
      // The same token as last time (most syncs): only when it was answered changes.
      known.lastSyncAt = this.now() / 1_000;
      return;
    }
    const issuedAt = Date.parse(issuedText);
    const expiresAt = Date.parse(expiresText);
    if (response.finalized !== undefined || Number.isNaN(issuedAt) || Number.isNaN(expiresAt)) {
      this.tokens.delete(key);
      return;
    }
    this.tokens.set(key, {
      namespace, name, issuedText, expiresText, issuedAt: issuedAt / 1_000, expiresAt: expiresAt / 1_000, lastSyncAt: this.now() / 1_000,
    });
  }
}
