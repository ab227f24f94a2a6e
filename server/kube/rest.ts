// A minimal Kubernetes REST client: one keep-alive connection pool per cluster and a
// hard timeout on every call, authenticated with a ClusterConnection (connection.ts).
// @kubernetes/client-node is not used: its generated API clients open a new TLS connection
// for every request and have no per-call timeout, and loading it costs about 40 MB.
// What client-go's transport does that node:https does not is done here: answers and watch
// lines are capped, idle sockets are closed before servers close them, an idempotent call
// that meets a socket the server had closed is sent again on another, HTTPS_PROXY and
// NO_PROXY are honoured, and a refused token file is read again at once.
import { Agent, request } from 'node:https';
import { request as plainRequest, Agent as PlainAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { isIPv6, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ClusterConnection } from './connection.js';
import { withoutTrailingSlashes } from './kubeconfig-text.js';
import { proxyFor } from './proxy.js';

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
 * A DELETE with a UID precondition that found nothing to delete: 404, the object is gone; 409,
 * the precondition failed, the object under that name is another one now. Either way ours is absent.
 */
export const isAlreadyDeleted = (error: unknown) => isNotFound(error) || (error instanceof KubeApiError && error.statusCode === 409);

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

/**
 * The most of one answer read into memory. An object is at most about 1.5 MiB (etcd's
 * limit), a page of a list (listPageSize items) far less for what the webhook lists: more is
 * a broken or hostile server, whose endless answer would otherwise grow the heap until the
 * Pod is killed, for every tenant.
 */
export const maxResponseBytes = 8 * 1024 * 1024;
/** The longest watch event line (one object), in bytes; the same bound as an answer. */
export const maxWatchLineChars = maxResponseBytes;
/** One watch brings at most this many longest lines in all (16 MiB from a target cluster). */
export const watchBytesPerLine = 16;
/**
 * The same bounds for a target cluster, whose server a DPUCluster owner chooses: what the webhook
 * reads there (a ServiceAccount, a token, a page of managed ServiceAccounts) is kilobytes, and
 * JSON.parse of 8 MiB shaped to be slow (distinct keys) blocks the event loop for over a second.
 */
export const maxTargetResponseBytes = 1024 * 1024;
/** An error answer's body is parsed for its Status (a few hundred bytes) only up to this size. */
const maxErrorBodyParsed = 64 * 1024;
/** Deeper JSON is refused unparsed: no Kubernetes object nests so deep, and JSON.parse of 4M nested arrays took 2.6 s. */
const maxJsonDepth = 64;

/** Whether `text`'s arrays and objects nest at most `maxJsonDepth` deep: one pass, strings skipped. */
export function withinJsonDepth(text: string): boolean {
  let depth = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 34) { // a string: skip to its closing quote, past escapes
      for (index += 1; index < text.length; index += 1) {
        const inner = text.charCodeAt(index);
        if (inner === 92) index += 1;
        else if (inner === 34) break;
      }
    } else if (code === 91 || code === 123) {
      if (++depth > maxJsonDepth) return false;
    } else if (code === 93 || code === 125) {
      depth -= 1;
    }
  }
  return true;
}
/**
 * A pooled socket idle this long is closed. kube-apiserver closes idle connections after 90 s
 * and load balancers in front of it often after 60 s; a request sent on a socket the server
 * is closing at that moment fails (ECONNRESET), so the client lets go of it first.
 */
export const idleSocketTimeoutMs = 30_000;
/** Methods sent again when they meet a socket the server had closed: repeating them changes nothing. */
const idempotentMethods = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
/** How long a proxy has to open a tunnel. */
const proxyConnectTimeoutMs = 10_000;

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
  request<T>(method: string, path: string, body?: unknown, options?: Pick<CallOptions, 'contentType'>): Promise<T>;
}

/** Called once per finished call: the HTTP status, or 0 when the server was not reached. */
export type ApiCallObserver = (method: string, statusCode: number) => void;

export interface KubeRestClientOptions {
  timeoutMs: number;
  observe?: ApiCallObserver;
  /** Connection pool limit towards this API server. */
  maxSockets?: number;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY are read; process.env otherwise. */
  env?: NodeJS.ProcessEnv;
  /** How long a pooled socket may stay idle; idleSocketTimeoutMs otherwise (tests lower it). */
  idleSocketTimeoutMs?: number;
  /** The most of an answer read, and the longest watch line; maxResponseBytes and maxWatchLineChars otherwise (tests lower them). */
  maxResponseBytes?: number;
}

/** The server's answer is larger than the client reads: a broken or hostile server. */
export class ResponseTooLargeError extends KubeApiError {
  constructor(statusCode: number, what: string, limit: number) {
    super(statusCode, 'ResponseTooLarge', `${what}: the answer exceeds ${limit} bytes; it was not read`);
    this.name = 'ResponseTooLargeError';
  }
}

/**
 * A call that failed on a pooled socket before any answer: the server had closed the socket
 * while it sat idle (ECONNRESET, EPIPE). Nothing was processed, so an idempotent call is sent
 * again, as Go's transport does.
 */
class StaleSocketError extends KubeUnreachableError {}

const isStaleSocketFailure = (req: ClientRequest, error: NodeJS.ErrnoException) =>
  req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');

/**
 * A socket to `host:port` through an http(s) proxy's CONNECT tunnel (Go's transport tunnels
 * https targets the same way; an http target is tunnelled too, not forwarded).
 */
function openTunnel(proxy: URL, host: string, port: number, done: (error: Error | null, socket?: Socket) => void): void {
  const authority = `${isIPv6(host) ? `[${host}]` : host}:${port}`;
  const headers: Record<string, string> = { Host: authority };
  if (proxy.username) {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    headers['Proxy-Authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  const send = proxy.protocol === 'https:' ? request : plainRequest;
  let settled = false;
  const finish = (error: Error | null, socket?: Socket) => {
    if (settled) return;
    settled = true;
    done(error, socket);
  };
  const connectRequest = send({
    host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxy.port || (proxy.protocol === 'https:' ? 443 : 80),
    method: 'CONNECT', path: authority, headers, agent: false, timeout: proxyConnectTimeoutMs,
  });
  connectRequest.on('connect', (answer: IncomingMessage, socket: Socket, head: Buffer) => {
    if (answer.statusCode !== 200 || head.length > 0) {
      socket.destroy();
      finish(new Error(`the proxy ${proxy.host} refused a tunnel to ${authority}: HTTP ${answer.statusCode}`));
      return;
    }
    finish(null, socket);
  });
  connectRequest.on('timeout', () => connectRequest.destroy(new Error(`the proxy ${proxy.host} opened no tunnel within ${proxyConnectTimeoutMs} ms`)));
  connectRequest.on('error', (error) => finish(new Error(`the proxy ${proxy.host}: ${error.message}`)));
  connectRequest.end();
}

type CreateConnection = (options: ConnectionOptions & { host?: string; port?: number }, callback: (error: Error | null, stream?: Duplex) => void) => Duplex | undefined;

/** Makes `agent` open its sockets through `proxy` (or fail with `refusal`, a proxy it cannot use). */
function routeThroughProxy(agent: Agent | PlainAgent, route: { proxy: URL } | { refusal: string }, tls: boolean): void {
  const createConnection: CreateConnection = (options, callback) => {
    if ('refusal' in route) {
      callback(new Error(route.refusal));
      return undefined;
    }
    openTunnel(route.proxy, options.host ?? 'localhost', Number(options.port), (error, socket) => {
      if (error || !socket) {
        callback(error ?? new Error('no tunnel'));
        return;
      }
      callback(null, tls ? tlsConnect({ ...options, socket }) : socket);
    });
    return undefined;
  };
  (agent as unknown as { createConnection: CreateConnection }).createConnection = createConnection;
}

interface ApiStatus {
  kind?: string;
  reason?: string;
  message?: string;
  details?: { retryAfterSeconds?: number };
}

/** A finished call's answer: the parsed body of a 2xx, else the KubeApiError its Status describes. */
function parseAnswer<T>(method: string, path: string, statusCode: number, text: string, retryAfter: string | string[] | undefined): T {
  const success = statusCode >= 200 && statusCode < 300;
  let parsed: unknown;
  try {
    parsed = text && (success || text.length <= maxErrorBodyParsed) && withinJsonDepth(text) ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (success) {
    if (text && parsed === undefined) throw new KubeApiError(statusCode, 'InvalidResponse', `${method} ${path}: the answer is not JSON`);
    return parsed as T;
  }
  const status = (parsed ?? {}) as ApiStatus;
  const retryAfterHeader = Number(retryAfter);
  const retryAfterSeconds = status.details?.retryAfterSeconds ?? (Number.isFinite(retryAfterHeader) ? retryAfterHeader : undefined);
  const detail = status.message ?? (text.trim().split('\n')[0]?.slice(0, 200) || 'no body');
  throw new KubeApiError(statusCode, status.reason ?? `HTTP${statusCode}`, `${method} ${path}: ${detail}`, retryAfterSeconds);
}

/**
 * The lines of a watch stream. The bytes of the line not ended yet are kept as received: a
 * newline is looked for only in each new chunk, and a line is joined and decoded once, when it
 * ends (a line across chunks may split a UTF-8 character; 0x0A never occurs inside one).
 */
class WatchLineReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  /** The bytes of the line not ended yet. */
  get unendedBytes(): number {
    return this.pendingBytes;
  }

  /**
   * Passes each line `chunk` ends, trimmed and not empty, to onLine, and keeps the rest of the
   * chunk. False when onLine stopped the reading (it returned false): the rest is then dropped.
   */
  read(chunk: Buffer, onLine: (line: string) => boolean): boolean {
    let start = 0;
    let newline: number;
    while ((newline = chunk.indexOf(0x0a, start)) >= 0) {
      const tail = chunk.subarray(start, newline);
      const bytes = this.pending.length ? Buffer.concat([...this.pending, tail]) : tail;
      this.clear();
      start = newline + 1;
      const line = bytes.toString('utf8').trim();
      if (line && !onLine(line)) return false;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
    }
    return true;
  }

  clear(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** One watch as it is read: its request and answer, and where its events and its failure go. */
interface WatchStream {
  req: ClientRequest;
  res: IncomingMessage;
  path: string;
  onEvent: (event: unknown) => void;
  reject: (error: unknown) => void;
}

/** One watch line to onEvent; false when the watch ends on it (its request is destroyed). */
function handleWatchLine(line: string, { req, onEvent, reject }: WatchStream): boolean {
  let event: unknown;
  try {
    if (!withinJsonDepth(line)) throw new Error('nested too deep');
    event = JSON.parse(line);
  } catch {
    // A line that is not JSON: the stream is broken; the caller lists again.
    req.destroy(new Error('a watch event is not JSON'));
    return false;
  }
  try {
    onEvent(event);
  } catch (error) {
    // The handler's own verdict (an ERROR event), or a bug, which is not the server's
    // fault: either is passed on as it is, not as "unreachable".
    reject(error);
    req.destroy();
    return false;
  }
  return true;
}

/**
 * Reads a watch's answer as events, within its budget: at most `watchLimit` bytes in all, and
 * no line longer than `lineLimit`; past either the watch fails and is not read further.
 */
function readWatchEvents(stream: WatchStream, { lineLimit, watchLimit }: { lineLimit: number; watchLimit: number }): void {
  const { req, res, path, reject } = stream;
  const lines = new WatchLineReader();
  let watchBytes = 0;
  const fail = (error: Error) => {
    reject(error);
    lines.clear();
    req.destroy();
  };
  res.on('data', (chunk: Buffer) => {
    watchBytes += chunk.length;
    if (watchBytes > watchLimit) {
      fail(new ResponseTooLargeError(res.statusCode ?? 0, `GET ${path}: the watch, all its events`, watchLimit));
      return;
    }
    if (!lines.read(chunk, (line) => handleWatchLine(line, stream))) return;
    if (lines.unendedBytes > lineLimit) {
      // A line without end: the server is broken or hostile; it is not read further.
      fail(new ResponseTooLargeError(res.statusCode ?? 0, `GET ${path}: a watch event`, lineLimit));
    }
  });
}

/**
 * Reads an answer of at most `limit` bytes: a larger one (by its Content-Length, or as it
 * arrives) goes to tooLarge and is read no further; otherwise its chunks go to end.
 */
function readCappedAnswer(res: IncomingMessage, limit: number, on: { tooLarge: () => void; error: (error: Error) => void; end: (chunks: Buffer[]) => void }): void {
  if (Number(res.headers['content-length']) > limit) {
    on.tooLarge();
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  res.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit) {
      chunks.length = 0;
      res.removeAllListeners('data');
      on.tooLarge();
      return;
    }
    chunks.push(chunk);
  });
  res.on('error', (error) => on.error(error));
  res.on('end', () => on.end(chunks));
}

export class KubeRestClient {
  readonly server: string;
  private readonly agent: Agent | PlainAgent;
  private readonly isHttps: boolean;

  constructor(private readonly connection: ClusterConnection, private readonly options: KubeRestClientOptions) {
    this.server = withoutTrailingSlashes(connection.server);
    this.isHttps = this.server.startsWith('https:');
    // timeout: how long a pooled socket may stay idle (the agent destroys it then).
    const pool = { keepAlive: true, maxSockets: options.maxSockets ?? 32, timeout: options.idleSocketTimeoutMs ?? idleSocketTimeoutMs };
    this.agent = this.isHttps
      ? new Agent({
        ...pool, ca: connection.caPem, cert: connection.clientCertPem, key: connection.clientKeyPem, servername: connection.tlsServerName,
        ...(connection.insecureSkipTlsVerify ? { rejectUnauthorized: false } : {}),
      })
      : new PlainAgent(pool);
    let proxy: URL | undefined;
    try {
      proxy = proxyFor(new URL(this.server), options.env ?? process.env);
    } catch (error) {
      // Every call fails, saying why, as Go's transport does with a proxy it cannot parse.
      routeThroughProxy(this.agent, { refusal: (error as Error).message }, this.isHttps);
    }
    if (proxy) routeThroughProxy(this.agent, { proxy }, this.isHttps);
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
   * After a 401: the token read again at once (a token file the kubelet has rotated since the
   * last read). True when it changed, so the call is worth sending again.
   */
  private tokenChangedOnReread(sent: Record<string, string>): boolean {
    const reread = this.connection.bearerToken?.(true);
    return reread !== undefined && `Bearer ${reread}` !== sent.Authorization;
  }

  /**
   * Streams a watch: calls onEvent for each event line until the server ends the watch
   * (resolves), the connection fails or stays silent past idleTimeoutMs, a line exceeds
   * maxWatchLineChars, or signal aborts (rejects). Watches have no overall deadline: they are
   * meant to last.
   */
  async watch(path: string, onEvent: (event: unknown) => void, idleTimeoutMs: number, signal: AbortSignal): Promise<void> {
    const headers = { Accept: 'application/json', ...this.authHeaders() };
    const lineLimit = this.options.maxResponseBytes ?? maxWatchLineChars;
    // What one watch may bring in all: the objects the webhook watches change rarely, and a server
    // that streams large events without end would keep the event loop parsing; past this the
    // watch ends as failed, and the caller lists again after its backoff.
    const watchLimit = watchBytesPerLine * lineLimit;
    return new Promise<void>((resolve, reject) => {
      const send = this.isHttps ? request : plainRequest;
      const req = send(`${this.server}${path}`, { method: 'GET', headers, agent: this.agent, timeout: idleTimeoutMs, signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          res.resume();
          reject(new KubeApiError(res.statusCode ?? 0, `HTTP${res.statusCode}`, `GET ${path}: HTTP ${res.statusCode}`));
          return;
        }
        readWatchEvents({ req, res, path, onEvent, reject }, { lineLimit, watchLimit });
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
    return { server: this.server, request: (method, path, body, options) => this.request(method, path, body, { ...options, deadline }) };
  }

  async request<T>(method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    const remainingMs = options.deadline?.remainingMs() ?? Infinity;
    if (remainingMs < minCallMs) {
      this.options.observe?.(method, 0);
      throw new KubeUnreachableError(this.server, `${method} ${path} not started: the hook has ${Math.max(0, Math.round(remainingMs))} ms left`);
    }
    // One end bounds the whole call, retries included.
    const endsAtMs = Date.now() + Math.min(this.options.timeoutMs, remainingMs);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const observe = this.options.observe;
    let staleSockets = 0;
    let tokenReread = false;
    for (;;) {
      const headers: Record<string, string> = { Accept: options.accept ?? 'application/json', ...this.authHeaders() };
      if (payload !== undefined) {
        headers['Content-Type'] = options.contentType ?? 'application/json';
        // Node sends a DELETE body without framing unless told its length; the server would
        // then read the body as the next request on this keep-alive connection.
        headers['Content-Length'] = String(Buffer.byteLength(payload));
      }
      try {
        const { value, statusCode } = await this.send<T>(method, path, headers, payload, endsAtMs - Date.now());
        observe?.(method, statusCode);
        return value;
      } catch (error) {
        // A pooled socket the server had closed: again on another socket, while the failures
        // are on pooled ones (Go's transport does the same); each such failure retires a socket.
        if (error instanceof StaleSocketError && idempotentMethods.has(method) && staleSockets++ < (this.options.maxSockets ?? 32)
          && endsAtMs - Date.now() >= minCallMs) continue;
        // A refused token that a re-read of its file replaces: nothing was done, send it once more.
        if (error instanceof KubeApiError && error.statusCode === 401 && !tokenReread && this.tokenChangedOnReread(headers)
          && endsAtMs - Date.now() >= minCallMs) {
          tokenReread = true;
          continue;
        }
        observe?.(method, error instanceof KubeApiError ? error.statusCode : 0);
        throw error;
      }
    }
  }

  /** One attempt of a call, within timeoutMs; an answer larger than the cap is cut off. */
  private send<T>(method: string, path: string, headers: Record<string, string>, payload: string | undefined, timeoutMs: number): Promise<{ value: T; statusCode: number }> {
    const limit = this.options.maxResponseBytes ?? maxResponseBytes;
    return new Promise<{ value: T; statusCode: number }>((resolve, reject) => {
      const send = this.isHttps ? request : plainRequest;
      let answered = false;
      const req = send(`${this.server}${path}`, { method, headers, agent: this.agent }, (res) => {
        answered = true;
        const statusCode = res.statusCode ?? 0;
        readCappedAnswer(res, limit, {
          tooLarge: () => {
            clearTimeout(timer);
            reject(new ResponseTooLargeError(statusCode, `${method} ${path}`, limit));
            // The rest is not read: the socket goes, not back to the pool.
            req.destroy();
          },
          error: (error) => {
            clearTimeout(timer);
            reject(new KubeUnreachableError(this.server, error.message));
          },
          end: (chunks) => {
            clearTimeout(timer);
            try {
              resolve({ value: parseAnswer<T>(method, path, statusCode, Buffer.concat(chunks).toString('utf8'), res.headers['retry-after']), statusCode });
            } catch (error) {
              reject(error);
            }
          },
        });
      });
      // One timer bounds the whole call, connecting, waiting and reading included (a socket
      // timeout would fire only on a socket that stays idle).
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${Math.round(timeoutMs)} ms`)), timeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(!answered && isStaleSocketFailure(req, error)
          ? new StaleSocketError(this.server, `${error.message} (a pooled connection the server had closed)`)
          : new KubeUnreachableError(this.server, error.message));
      });
      req.end(payload);
    });
  }
}
