// HTTP: the hook calls (who calls, what they send, the hook, its answer, error mapping) and the
// probes. The hooks do the work.
//
// The hook calls are served straight on node:http, as plain code in the order it runs; express
// serves the rest (probes, unknown paths). Express sets every request's and response's prototype
// and runs its router before any route: on the reuse path that cost more CPU than the whole sync
// (bench/PROFILE.md, "The hook calls without express"), and the hook calls are nearly all of
// this port's traffic.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Request, type Response } from 'express';
import { customize } from './hooks/customize.js';
import { finalize } from './hooks/finalize.js';
import { refuseOversized } from './hooks/oversized.js';
import { sync } from './hooks/sync.js';
import type { SyncOutcome } from './hooks/outcome.js';
import type { HookContext } from './hooks/context.js';
import { hookDeadline } from './hooks/deadline.js';
import { hookRequestProblem, type SyncRequest, type CustomizeRequest } from './metacontroller.js';
import { apiVersion, kind } from './api.js';
import { bearerRefusal, type HookTokens } from './http/bearer-auth.js';
import type { EventRecorder } from './kube/events.js';
import { clientCertificateRefusal } from './http/client-certificate.js';
import { BodyNotJson, BodyTooLarge, BodyUnreadable, oversizedSummary, readableFields, readHookBody, type HookBody, type OversizedHookBody } from './http/hook-body.js';
import { sendJson, sendRefusal, type CallRefusal } from './http/json-answer.js';
import { retryAfterHeader } from './http/retry-after.js';
import type { Metrics } from './metrics.js';

export interface AppOptions {
  maxBodyBytes: number;
  metrics: Metrics;
  /** When set, every hook call must carry one of these bearer tokens. */
  hookTokens?: HookTokens;
  /**
   * Every hook call must come over a connection with a client certificate the server verified,
   * issued for client authentication to this subject common name.
   */
  clientCertificateSubject?: string;
  /** Records the Events a hook call is worth on its request; absent: none are recorded. */
  events?: EventRecorder;
  /** Readiness: resolves when the host cluster answers. */
  hostClusterReachable: () => Promise<void>;
}

class BadRequest extends Error {}

type HookName = 'sync' | 'finalize' | 'customize';

/** The path of a request target: origin form (`/sync?x`), or the absolute form a proxy is sent (`https://host/sync`). */
function pathOf(target: string): string {
  if (target.startsWith('/')) {
    const end = target.search(/[?#]/);
    return end < 0 ? target : target.slice(0, end);
  }
  try {
    return new URL(target).pathname;
  } catch {
    return '';
  }
}

/**
 * The hook a request calls: a POST to its path, matched as express matched the routes before
 * (in any case, with or without one trailing slash). Undefined for anything else.
 */
function hookOf(req: IncomingMessage): HookName | undefined {
  if (req.method !== 'POST') return undefined;
  const path = pathOf(req.url ?? '').toLowerCase();
  const bare = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return bare === '/sync' ? 'sync' : bare === '/finalize' ? 'finalize' : bare === '/customize' ? 'customize' : undefined;
}

/** A request with a body (type-is's test: a transfer encoding, or a numeric length). */
const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length']));

const isBlank = (code: number) => code === 0x20 || code === 0x09;

/** A body of media type application/json, parameters aside (what req.is('application/json') accepted). */
function isJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  if (type === undefined || !hasBody(req)) return false;
  // Metacontroller's header, without a parameter: no slicing.
  if (type === 'application/json') return true;
  // Only spaces and tabs around the media type, as type-is allows (String.trim would take any Unicode space).
  let start = 0;
  let end = type.indexOf(';');
  if (end < 0) end = type.length;
  while (start < end && isBlank(type.charCodeAt(start))) start++;
  while (end > start && isBlank(type.charCodeAt(end - 1))) end--;
  return type.slice(start, end).toLowerCase() === 'application/json';
}

const notJson: CallRefusal = { status: 415, error: 'hook requests must be application/json' };

/** What every hook call must pass before its body is read, in order: the caller's credentials, then the body's type. */
function refusalOf(req: IncomingMessage, options: AppOptions): CallRefusal | undefined {
  return (options.clientCertificateSubject !== undefined ? clientCertificateRefusal(options.clientCertificateSubject, req.socket) : undefined)
    ?? (options.hookTokens ? bearerRefusal(options.hookTokens, req) : undefined)
    ?? (isJson(req) ? undefined : notJson);
}

/** A body that fits, as the hook request it must be. A body over the limit is answered by runOversizedHook, or not at all. */
function hookRequestOf<T>(body: HookBody): T {
  if (!body.fits) throw new BodyTooLarge();
  const problem = hookRequestProblem(body.value);
  if (problem) throw new BadRequest(`not a Metacontroller hook request: ${problem}`);
  return body.value as T;
}

/**
 * The parent and controller of a body over the limit, when its kept part holds them whole and
 * they are a hook request's; otherwise the body cannot be answered (413).
 */
function oversizedHookRequest(body: OversizedHookBody): Pick<SyncRequest, 'controller' | 'parent'> {
  const fields = readableFields(body);
  if (!fields) throw new BodyTooLarge('it holds no readable parent before that');
  const problem = hookRequestProblem(fields);
  if (problem) throw new BodyTooLarge(`its parent is not a hook request's: ${problem}`);
  return fields as Pick<SyncRequest, 'controller' | 'parent'>;
}

/** Express without the header that names it and without ETags (the hook answers carry neither). */
function plainExpress(): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  return app;
}

/**
 * `/metrics` alone, for its own port (METRICS_PORT): scrapers then never need to reach the
 * port that mints credentials, and the NetworkPolicy can admit each from its own callers.
 */
export function createMetricsApp(metrics: Metrics): express.Express {
  const app = plainExpress();
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.exposition());
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: this port serves GET /metrics only' });
  });
  return app;
}

/** Everything on the hook port that is not a hook call: the probes, and 404 for the rest. */
function probesApp(options: AppOptions): express.Express {
  const app = plainExpress();
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await options.hostClusterReachable();
      res.json({ status: 'ready' });
    } catch (error) {
      res.status(503).json({ status: 'host cluster unreachable', error: (error as Error).message });
    }
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: the hooks are POST /sync, /customize and /finalize (and /metrics is on METRICS_PORT)' });
  });
  return app;
}

interface HookRun {
  request: Pick<SyncRequest, 'controller' | 'parent'>;
  outcome: SyncOutcome;
}

/** A body over the limit: finalized when its parent is being deleted, otherwise refused by the hook. */
async function runOversizedHook(name: 'sync' | 'finalize', oversized: OversizedHookBody, context: HookContext, receivedAtMs: number): Promise<HookRun> {
  const request = oversizedHookRequest(oversized);
  // `finalizing` comes after the children: when it was not seen, a parent being deleted is finalized.
  const finalizing = name === 'finalize' || (oversized.layout.finalizing ?? Boolean(request.parent.metadata?.deletionTimestamp));
  const deadline = hookDeadline(request.controller, finalizing ? 'finalize' : 'sync', receivedAtMs);
  // Finalize reads the status's records and the spec, not the children: it runs as it would.
  const outcome = finalizing
    ? await finalize(request, context, deadline)
    : await refuseOversized(request, oversizedSummary(oversized), context, deadline);
  return { request, outcome };
}

async function runHook(name: 'sync' | 'finalize', body: HookBody, context: HookContext, receivedAtMs: number): Promise<HookRun> {
  if (!body.fits) return runOversizedHook(name, body.oversized, context, receivedAtMs);
  const whole = hookRequestOf<SyncRequest>(body);
  const finalizing = whole.finalizing === true || name === 'finalize';
  const deadline = hookDeadline(whole.controller, finalizing ? 'finalize' : 'sync', receivedAtMs);
  const outcome = await (finalizing ? finalize : sync)(whole, context, deadline);
  return { request: whole, outcome };
}

function sendOutcome(res: ServerResponse, outcome: SyncOutcome): void {
  if (outcome.decision === 'behind') {
    // Metacontroller's one "try again later" that is not an error: a 429 with Retry-After
    // requeues the parent without a SyncError event, and nothing it holds is applied.
    const retryAfter = retryAfterHeader(outcome.response.resyncAfterSeconds);
    sendJson(res, 429, { error: `the children in this request are older than the token issued last; retry in ${retryAfter}s` }, { 'Retry-After': retryAfter });
  } else {
    sendJson(res, 200, outcome.response);
  }
}

/** The Events, metrics and log line of a hook call that was answered. */
function recordHook(name: HookName, { request, outcome }: HookRun, durationMs: number, context: HookContext, options: AppOptions): void {
  const { namespace = '', name: requestName = '', uid = '' } = request.parent.metadata ?? {};
  if (outcome.events?.length) {
    options.events?.record({ apiVersion: request.parent.apiVersion ?? apiVersion, kind: request.parent.kind ?? kind, namespace, name: requestName, uid }, outcome.events);
  }
  const failed = outcome.decision === 'error' || outcome.decision === 'invalid';
  options.metrics.observeHook(name, outcome.decision, durationMs, failed ? outcome.reason : undefined);
  options.metrics.observeToken(namespace, requestName, outcome.response);
  context.log.info('hook', {
    hook: name, namespace, name: requestName, decision: outcome.decision, reason: outcome.reason,
    ...(outcome.detail ? { detail: outcome.detail } : {}), durationMs: Math.round(durationMs),
  });
}

/** The status and message a failed hook call is answered with; a 500 is logged. */
function errorAnswer(error: unknown, name: HookName, context: HookContext, options: AppOptions): [status: number, message: string] {
  if (error instanceof BadRequest || error instanceof BodyNotJson) return [400, error.message];
  if (error instanceof BodyTooLarge) {
    return [413, `the body is larger than ${options.maxBodyBytes} bytes${error.message ? `: ${error.message}` : ''}`];
  }
  if (error instanceof BodyUnreadable) return [error.status, error.message];
  // Only the error's class and message: they come from this code and the API servers, never from a Secret.
  context.log.error('hook failed', { path: `/${name}`, error: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
  return [500, 'internal error; see the webhook log'];
}

/** One hook call, from its caller's credentials to its log line. Every failure is answered here. */
async function serveHook(name: HookName, req: IncomingMessage, res: ServerResponse, context: HookContext, options: AppOptions): Promise<void> {
  try {
    const refusal = refusalOf(req, options);
    if (refusal) {
      sendRefusal(res, refusal);
      return;
    }
    const body = await readHookBody(req, options.maxBodyBytes);
    // As before: the hook's duration and deadline count from the body received.
    const started = performance.now();
    const receivedAtMs = Date.now();
    if (name === 'customize') {
      sendJson(res, 200, customize(hookRequestOf<CustomizeRequest>(body)));
      return;
    }
    const run = await runHook(name, body, context, receivedAtMs);
    sendOutcome(res, run.outcome);
    recordHook(name, run, performance.now() - started, context, options);
  } catch (error) {
    const [status, message] = errorAnswer(error, name, context, options);
    options.metrics.observeRejected(name, status === 500 ? 'internal_error' : 'bad_request');
    context.log.debug('hook rejected', { path: `/${name}`, status, error: message });
    // After the answer was sent (its Events, metrics or log line failed), the caller has it already.
    if (!res.headersSent) sendJson(res, status, { error: message });
  }
}

/** The hook port: the hook calls (serveHook), and the probes on express. */
export function createApp(context: HookContext, options: AppOptions): RequestListener {
  const probes = probesApp(options);
  return (req, res) => {
    const hook = hookOf(req);
    if (!hook) {
      probes(req, res);
      return;
    }
    serveHook(hook, req, res, context, options).catch((error: unknown) => {
      // Only if answering the failure failed too: the connection is closed rather than left hanging.
      res.destroy();
      try {
        context.log.error('hook answer failed', { path: `/${hook}`, error: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
      } catch {
        // Nothing is left to tell it to.
      }
    });
  };
}
