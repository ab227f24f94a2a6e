// Events on the requests (events.k8s.io/v1), sent after the hook has answered, never in
// its way. Rate-limited per request as client-go's spam filter is (a burst of 25, then one
// every 5 minutes), so a request that keeps failing cannot flood the API server.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { EventNote } from '../credential/events.js';
import type { Logger } from '../log.js';
import type { KubeRestClient } from './rest.js';

export const reportingController = 'svc.dpu.nvidia.com/dpu-credential-webhook';

export interface Regarding {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

export interface EventLimits {
  burst: number;
  refillMs: number;
}

export const defaultEventLimits: EventLimits = { burst: 25, refillMs: 300_000 };
/** Per-request buckets kept at most; idle (full) ones are dropped first. */
const maxBuckets = 10_000;

/** metav1.MicroTime: RFC 3339 with microseconds. */
const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

export class EventRecorder {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();

  constructor(
    private readonly client: KubeRestClient,
    private readonly log: Logger,
    private readonly limits: EventLimits = defaultEventLimits,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether one more event about this object may be sent now (a token bucket per object). */
  allow(uid: string): boolean {
    const nowMs = this.clock();
    if (!this.buckets.has(uid) && this.buckets.size >= maxBuckets) this.dropIdle(nowMs);
    const bucket = this.buckets.get(uid) ?? { tokens: this.limits.burst, atMs: nowMs };
    bucket.tokens = this.refilled(bucket, nowMs);
    bucket.atMs = nowMs;
    this.buckets.set(uid, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private refilled(bucket: { tokens: number; atMs: number }, nowMs: number): number {
    return Math.min(this.limits.burst, bucket.tokens + (nowMs - bucket.atMs) / this.limits.refillMs);
  }

  private dropIdle(nowMs: number): void {
    for (const [uid, bucket] of this.buckets) {
      if (this.refilled(bucket, nowMs) >= this.limits.burst) this.buckets.delete(uid);
    }
  }

  /** Sends the notes about `regarding`, in the background; a failure is logged, nothing more. */
  record(regarding: Regarding, notes: EventNote[]): void {
    for (const note of notes) {
      if (!regarding.uid || !this.allow(regarding.uid)) continue;
      const body = {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: `${regarding.name}.${randomBytes(8).toString('hex')}`, namespace: regarding.namespace },
        eventTime: microTime(this.clock()),
        reportingController,
        reportingInstance: hostname(),
        action: 'Sync',
        type: note.type,
        reason: note.reason,
        note: note.note,
        regarding,
      };
      this.client.request('POST', `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(regarding.namespace)}/events`, body)
        .catch((error: unknown) => this.log.debug('event not recorded', { reason: note.reason, error: (error as Error).message }));
    }
  }
}
