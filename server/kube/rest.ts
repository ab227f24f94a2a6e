// A minimal Kubernetes REST client: one keep-alive connection pool per cluster and a
// hard timeout on every call, authenticated with a ClusterConnection (connection.ts).
// @kubernetes/client-node is not used: its generated API clients open a new TLS connection
// for every request and have no per-call timeout, and loading it costs about 40 MB.
import { Agent, request } from 'node:https';
import { request as plainRequest, Agent as PlainAgent } from 'node:http';
import type { ClusterConnection } from './connection.js';
import { withoutTrailingSlashes } from './kubeconfig-text.js';

/** The API server answered with an error status. */
export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    /** metav1.Status reason, e.g. NotFound, AlreadyExists, Conflict. */
    readonly reason: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** The API server could not be reached, or did not answer in time. */
export class KubeUnreachableError extends Error {
  /** The message is the same however the call failed, so status does not change between retries; the cause is for logs. */
  constructor(readonly server: string, readonly detail: string) {
    super(`cannot reach ${server}`);
    this.name = 'KubeUnreachableError';
  }
}

export const isNotFound = (error: unknown) => error instanceof KubeApiError && error.statusCode === 404;

/**
 * When the hook that makes a call must have answered. A call gets what is left of it (at
 * most the client's own timeout), and one with too little left is not started: its answer
 * would come after Metacontroller has given up on the hook, and a token it minted be lost.
 */
export class Deadline {
  constructor(readonly atMs: number, private readonly clock: () => number = Date.now) {}

  remainingMs(): number {
    return this.atMs - this.clock();
  }
}

/** Less than this left: a call is not started. */
export const minCallMs = 200;

export interface CallOptions {
  /** For patches (merge-patch+json, apply-patch+yaml); JSON otherwise. */
  contentType?: string;
  /** What to ask the server for; JSON otherwise (e.g. only an object's metadata). */
  accept?: string;
  deadline?: Deadline;
}

/** What the hooks call the API with: a client with the hook's deadline applied to every call. */
export interface ApiCaller {
  readonly server: string;
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
}

/** Called once per finished call: the HTTP status, or 0 when the server was not reached. */
export type ApiCallObserver = (method: string, statusCode: number) => void;

export interface KubeRestClientOptions {
  timeoutMs: number;
  observe?: ApiCallObserver;
  /** Connection pool limit towards this API server. */
  maxSockets?: number;
}

interface ApiStatus {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { retryAfterSeconds?: number };
}

/** A finished call's answer: the parsed body of a 2xx, else the KubeApiError its Status describes. */
function parseAnswer<T>(method: string, path: string, statusCode: number, text: string, retryAfter: string | string[] | undefined): T {
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (statusCode >= 200 && statusCode < 300) {
    if (text && parsed === undefined) throw new KubeApiError(statusCode, 'InvalidResponse', `${method} ${path}: the answer is not JSON`);
    return parsed as T;
  }
  const status = (parsed ?? {}) as ApiStatus;
  const retryAfterHeader = Number(retryAfter);
  const retryAfterSeconds = status.details?.retryAfterSeconds ?? (Number.isFinite(retryAfterHeader) ? retryAfterHeader : undefined);
  const detail = status.message ?? (text.trim().split('\n')[0]?.slice(0, 200) || 'no body');
  throw new KubeApiError(statusCode, status.reason ?? `HTTP${statusCode}`, `${method} ${path}: ${detail}`, retryAfterSeconds);
}

export class KubeRestClient {
  readonly server: string;
  private readonly agent: Agent | PlainAgent;
  private readonly isHttps: boolean;

  private constructor(private readonly connection: ClusterConnection, private readonly options: KubeRestClientOptions) {
    this.server = withoutTrailingSlashes(connection.server);
    this.isHttps = this.server.startsWith('https:');
    const pool = { keepAlive: true, maxSockets: options.maxSockets ?? 32 };
    this.agent = this.isHttps
      ? new Agent({
        ...pool, ca: connection.caPem, cert: connection.clientCertPem, key: connection.clientKeyPem, servername: connection.tlsServerName,
        ...(connection.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
      })
      : new PlainAgent(pool);
  }

  /** Async for the callers that awaited client-node's authentication; nothing is awaited any more. */
  static async create(connection: ClusterConnection, options: KubeRestClientOptions): Promise<KubeRestClient> {
    return new KubeRestClient(connection, options);
  }

  /** Closes pooled connections; the client must not be used afterwards. */
  close(): void {
    this.agent.destroy();
  }

  /** Asked per call: a token read from a file rotates (connection.ts re-reads it). */
  private authHeaders(): Record<string, string> {
    const token = this.connection.bearerToken?.();
    return token ? { Authorization: `Bearer ${token}` } : {};
  }

  /**
   * Streams a watch: calls onEvent for each event line until the server ends the watch
   * (resolves), the connection fails or stays silent past idleTimeoutMs, or signal aborts
   * (rejects). Watches have no overall deadline: they are meant to last.
   */
  async watch(path: string, onEvent: (event: unknown) => void, idleTimeoutMs: number, signal: AbortSignal): Promise<void> {
    const headers = { Accept: 'application/json', ...this.authHeaders() };
    return new Promise<void>((resolve, reject) => {
      const send = this.isHttps ? request : plainRequest;
      const req = send(`${this.server}${path}`, { method: 'GET', headers, agent: this.agent, timeout: idleTimeoutMs, signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          res.resume();
          reject(new KubeApiError(res.statusCode ?? 0, `HTTP${res.statusCode}`, `GET ${path}: HTTP ${res.statusCode}`));
          return;
        }
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          let newline: number;
          while ((newline = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, newline).trim();
            pending = pending.slice(newline + 1);
            if (!line) continue;
            let event: unknown;
            try {
              event = JSON.parse(line);
            } catch {
              // A line that is not JSON: the stream is broken; the caller lists again.
              req.destroy(new Error('a watch event is not JSON'));
              return;
            }
            try {
              onEvent(event);
            } catch (error) {
              // A bug in the handler is not the server's fault: it is passed on as it is, not as
              // "unreachable", which the caller would retry forever.
              reject(error);
              req.destroy();
              return;
            }
          }
        });
        res.on('error', (error) => reject(new KubeUnreachableError(this.server, error.message)));
        res.on('end', () => resolve());
      });
      req.on('timeout', () => req.destroy(new Error(`watch silent for ${idleTimeoutMs} ms`)));
      req.on('error', (error) => reject(new KubeUnreachableError(this.server, error.message)));
      req.end();
    });
  }

  /** This client with every call bounded by `deadline`. */
  within(deadline: Deadline): ApiCaller {
    return { server: this.server, request: (method, path, body) => this.request(method, path, body, { deadline }) };
  }

  async request<T>(method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    const remainingMs = options.deadline?.remainingMs() ?? Infinity;
    if (remainingMs < minCallMs) {
      this.options.observe?.(method, 0);
      throw new KubeUnreachableError(this.server, `${method} ${path} not started: the hook has ${Math.max(0, Math.round(remainingMs))} ms left`);
    }
    const timeoutMs = Math.min(this.options.timeoutMs, remainingMs);
    const headers: Record<string, string> = { Accept: options.accept ?? 'application/json', ...this.authHeaders() };
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      // Node sends a DELETE body without framing unless told its length; the server would
      // then read the body as the next request on this keep-alive connection.
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }

    const observe = this.options.observe;
    const call = new Promise<{ value: T; statusCode: number }>((resolve, reject) => {
      const send = this.isHttps ? request : plainRequest;
      const req = send(`${this.server}${path}`, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => {
          clearTimeout(timer);
          reject(new KubeUnreachableError(this.server, error.message));
        });
        res.on('end', () => {
          clearTimeout(timer);
          const statusCode = res.statusCode ?? 0;
          try {
            resolve({ value: parseAnswer<T>(method, path, statusCode, Buffer.concat(chunks).toString('utf8'), res.headers['retry-after']), statusCode });
          } catch (error) {
            reject(error);
          }
        });
      });
      // One timer bounds the whole call, connecting, waiting and reading included (a socket
      // timeout would fire only on a socket that stays idle).
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${Math.round(timeoutMs)} ms`)), timeoutMs);
      req.on('error', (error) => {
        clearTimeout(timer);
        reject(new KubeUnreachableError(this.server, error.message));
      });
      req.end(payload);
    });
    return call.then(
      ({ value, statusCode }) => {
        observe?.(method, statusCode);
        return value;
      },
      (error: unknown) => {
        observe?.(method, error instanceof KubeApiError ? error.statusCode : 0);
        throw error;
      },
    );
  }
}
