// Metacontroller's own API client, as client-go gives it: every call it makes to the API
// server (not its informers' list and watch, which the driver's caches stand for) waits for
// a token from one bucket of --client-go-qps tokens per second holding at most
// --client-go-burst (flowcontrol.NewTokenBucketRateLimiter, full at start). The calls are
// counted by verb, so a benchmark can say what Metacontroller spends per request.
import type { CallOptions, KubeRestClient } from '../../server/kube/rest.js';

export interface ClientGoLimits {
  /** --client-go-qps (Metacontroller's default: 5). */
  qps: number;
  /** --client-go-burst (Metacontroller's default: 10). */
  burst: number;
}

/** Metacontroller v4.17's flags as it ships (pkg/cmd/metacontroller/main.go). */
export const metacontrollerDefaults = { qps: 5, burst: 10, workers: 5 } as const;

/** The calls a client makes; KubeRestClient and ThrottledClient both have it. */
export interface ApiClient {
  request<T>(method: string, path: string, body?: unknown, options?: CallOptions): Promise<T>;
}

export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly limits: ClientGoLimits, private readonly now: () => number = () => performance.now()) {
    this.tokens = limits.burst;
    this.refilledAt = now();
  }

  /** Milliseconds the caller must wait for its token; the token is taken now (rate.Limiter's Reserve). */
  reserve(): number {
    const now = this.now();
    this.tokens = Math.min(this.limits.burst, this.tokens + ((now - this.refilledAt) / 1_000) * this.limits.qps);
    this.refilledAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.limits.qps) * 1_000;
  }
}

export class ThrottledClient implements ApiClient {
  /** Calls made, by HTTP method. */
  readonly calls: Record<string, number> = {};
  private readonly bucket: TokenBucket | undefined;

  /** Sees every answer: the driver's watched informers expect the objects it wrote. */
  onResult?: (method: string, result: unknown) => void;

  /** Without limits, calls are counted and never wait (the tests' default). */
  constructor(private readonly inner: KubeRestClient, limits?: ClientGoLimits) {
    this.bucket = limits ? new TokenBucket(limits) : undefined;
  }

  get total(): number {
    return Object.values(this.calls).reduce((sum, count) => sum + count, 0);
  }

  async request<T>(method: string, path: string, body?: unknown, options?: CallOptions): Promise<T> {
    const waitMs = this.bucket?.reserve() ?? 0;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    const result = await this.inner.request<T>(method, path, body, options);
    this.onResult?.(method, result);
    return result;
  }
}
