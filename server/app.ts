// HTTP: routes, request-shape checks, body limits and error mapping. The hooks do the work.
import express, { type NextFunction, type Request, type Response } from 'express';
import { customize } from './hooks/customize.js';
import { finalize } from './hooks/finalize.js';
import { refuseOversized } from './hooks/oversized.js';
import { sync } from './hooks/sync.js';
import type { SyncOutcome } from './hooks/outcome.js';
import type { HookContext } from './hooks/context.js';
import { hookDeadline } from './hooks/deadline.js';
import { hookRequestProblem, type SyncRequest, type CustomizeRequest } from './metacontroller.js';
import { apiVersion, kind } from './api.js';
import { bearerAuth, type HookTokens } from './http/bearer-auth.js';
import type { EventRecorder } from './kube/events.js';
import { clientCertificateAuth } from './http/client-certificate.js';
import { BodyNotJson, BodyTooLarge, BodyUnreadable, oversizedSummary, readableFields, readHookBody, type OversizedHookBody } from './http/hook-body.js';
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

/** The body, when it was over the limit (hook-body.ts); `req.body` is then unset. */
const oversizedBodyOf = (res: Response) => res.locals.oversizedBody as OversizedHookBody | undefined;

function parseHookRequest<T>(req: Request, res: Response): T {
  if (oversizedBodyOf(res)) throw new BodyTooLarge();
  const problem = hookRequestProblem(req.body);
  if (problem) throw new BadRequest(`not a Metacontroller hook request: ${problem}`);
  return req.body as T;
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

/**
 * `/metrics` alone, for its own port (METRICS_PORT): scrapers then never need to reach the
 * port that mints credentials, and the NetworkPolicy can admit each from its own callers.
 */
export function createMetricsApp(metrics: Metrics): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.exposition());
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: this port serves GET /metrics only' });
  });
  return app;
}

function addProbes(app: express.Express, options: AppOptions): void {
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
}

/**
 * What req.is('application/json') answers for the header Metacontroller sends, without
 * parsing it (type-is parses the media type and looks it up on every call): a body, and
 * exactly that type. Anything else goes through req.is.
 */
const plainJson = (req: Request) => req.headers['content-type'] === 'application/json'
  && (req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length'])));

function requireJson(req: Request, res: Response, next: NextFunction): void {
  if (!plainJson(req) && !req.is('application/json')) {
    res.status(415).json({ error: 'hook requests must be application/json' });
    return;
  }
  next();
}

// requireJson has checked the type already. A body over the limit is not refused here: its
// parent can still be read, and the hook answers it (oversized.ts).
const jsonBody = (maxBodyBytes: number) => (req: Request, res: Response, next: NextFunction) => {
  readHookBody(req, maxBodyBytes).then((body) => {
    if (body.fits) req.body = body.value;
    else res.locals.oversizedBody = body.oversized;
    next();
  }, next);
};

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/**
 * What every hook call passes before its hook runs: the caller's credentials, then a JSON body.
 * One express layer that runs the checks in turn (each answers the call itself, or goes on):
 * every layer the router dispatches costs it a match and a call on every hook call.
 */
function hookGuard(options: AppOptions): Middleware {
  const checks: Middleware[] = [
    ...(options.clientCertificateSubject !== undefined ? [clientCertificateAuth(options.clientCertificateSubject)] : []),
    ...(options.hookTokens ? [bearerAuth(options.hookTokens)] : []),
    requireJson, jsonBody(options.maxBodyBytes),
  ];
  return (req, res, next) => {
    let at = 0;
    const passed = (error?: unknown) => {
      const check = checks[at++];
      if (error !== undefined || !check) next(error);
      else check(req, res, passed);
    };
    passed();
  };
}

type HookName = 'sync' | 'finalize';

interface HookRun {
  request: Pick<SyncRequest, 'controller' | 'parent'>;
  outcome: SyncOutcome;
}

/** A body over the limit: finalized when its parent is being deleted, otherwise refused by the hook. */
async function runOversizedHook(name: HookName, oversized: OversizedHookBody, context: HookContext, receivedAtMs: number): Promise<HookRun> {
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

async function runHook(name: HookName, req: Request, res: Response, context: HookContext, receivedAtMs: number): Promise<HookRun> {
  const oversized = oversizedBodyOf(res);
  if (oversized) return runOversizedHook(name, oversized, context, receivedAtMs);
  const whole = parseHookRequest<SyncRequest>(req, res);
  const finalizing = whole.finalizing === true || name === 'finalize';
  const deadline = hookDeadline(whole.controller, finalizing ? 'finalize' : 'sync', receivedAtMs);
  const outcome = await (finalizing ? finalize : sync)(whole, context, deadline);
  return { request: whole, outcome };
}

/**
 * The headers and body res.json writes, without express's send on the way (it reads the app's JSON
 * settings, parses the Content-Type it has just set to add the charset, and copies a body of over
 * 1,000 characters into a Buffer): this runs on every hook call.
 */
function sendJson(res: Response, value: unknown): void {
  const body = JSON.stringify(value);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(body);
}

function sendOutcome(res: Response, outcome: SyncOutcome): void {
  if (outcome.decision === 'behind') {
    // Metacontroller's one "try again later" that is not an error: a 429 with Retry-After
    // requeues the parent without a SyncError event, and nothing it holds is applied.
    const retryAfter = retryAfterHeader(outcome.response.resyncAfterSeconds);
    res.status(429).set('Retry-After', retryAfter)
      .json({ error: `the children in this request are older than the token issued last; retry in ${retryAfter}s` });
  } else {
    sendJson(res, outcome.response);
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

const hookRoute = (name: HookName, context: HookContext, options: AppOptions) =>
  async (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    const receivedAtMs = Date.now();
    try {
      const run = await runHook(name, req, res, context, receivedAtMs);
      sendOutcome(res, run.outcome);
      recordHook(name, run, performance.now() - started, context, options);
    } catch (error) {
      next(error);
    }
  };

function addHooks(app: express.Express, context: HookContext, options: AppOptions): void {
  const guard = hookGuard(options);
  app.post('/sync', guard, hookRoute('sync', context, options));
  app.post('/finalize', guard, hookRoute('finalize', context, options));
  app.post('/customize', guard, (req, res, next) => {
    try {
      res.json(customize(parseHookRequest<CustomizeRequest>(req, res)));
    } catch (error) {
      next(error);
    }
  });
}

/** The status and message a failed hook call is answered with; a 500 is logged. */
function errorAnswer(error: unknown, req: Request, context: HookContext, options: AppOptions): [status: number, message: string] {
  const httpError = error as { status?: number; type?: string };
  if (error instanceof BadRequest || error instanceof BodyNotJson) return [400, error.message];
  if (error instanceof BodyTooLarge) {
    return [413, `the body is larger than ${options.maxBodyBytes} bytes${error.message ? `: ${error.message}` : ''}`];
  }
  if (error instanceof BodyUnreadable) return [error.status, error.message];
  if (typeof httpError.status === 'number' && httpError.status >= 400 && httpError.status < 500) {
    return [httpError.status, 'the request could not be read'];
  }
  // Only the error's class and message: they come from this code and the API servers, never from a Secret.
  context.log.error('hook failed', { path: req.path, error: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
  return [500, 'internal error; see the webhook log'];
}

// Express's error handler signature needs all four parameters.
const errorHandler = (context: HookContext, options: AppOptions) =>
  (error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const [status, message] = errorAnswer(error, req, context, options);
    options.metrics.observeRejected(req.path.slice(1), status === 500 ? 'internal_error' : 'bad_request');
    context.log.debug('hook rejected', { path: req.path, status, error: message });
    res.status(status).json({ error: message });
  };

export function createApp(context: HookContext, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  addProbes(app, options);
  addHooks(app, context, options);
  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: the hooks are POST /sync, /customize and /finalize (and /metrics is on METRICS_PORT)' });
  });
  app.use(errorHandler(context, options));
  return app;
}
