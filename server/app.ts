// HTTP: routes, request-shape checks, body limits and error mapping. The hooks do the work.
import express, { type NextFunction, type Request, type Response } from 'express';
import { customize } from './hooks/customize.js';
import { finalize } from './hooks/finalize.js';
import { sync } from './hooks/sync.js';
import type { HookContext } from './hooks/context.js';
import { hookDeadline } from './hooks/deadline.js';
import { hookRequestProblem, type SyncRequest, type CustomizeRequest } from './metacontroller.js';
import { apiVersion, kind } from './api.js';
import { bearerAuth, type HookTokens } from './http/bearer-auth.js';
import type { EventRecorder } from './kube/events.js';
import { clientCertificateAuth } from './http/client-certificate.js';
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

function parseHookRequest<T>(req: Request): T {
  const problem = hookRequestProblem(req.body);
  if (problem) throw new BadRequest(`not a Metacontroller hook request: ${problem}`);
  return req.body as T;
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

export function createApp(context: HookContext, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

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
  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('application/json')) {
      res.status(415).json({ error: 'hook requests must be application/json' });
      return;
    }
    next();
  };
  // requireJson has checked the type already: the parser need not check it again.
  const jsonBody = express.json({ limit: options.maxBodyBytes, strict: true, type: () => true });
  const guard = [
    ...(options.clientCertificateSubject !== undefined ? [clientCertificateAuth(options.clientCertificateSubject)] : []),
    ...(options.hookTokens ? [bearerAuth(options.hookTokens)] : []),
    requireJson, jsonBody,
  ];

  const hook = (name: 'sync' | 'finalize') =>
    async (req: Request, res: Response, next: NextFunction) => {
      const started = performance.now();
      const receivedAtMs = Date.now();
      try {
        const request = parseHookRequest<SyncRequest>(req);
        const finalizing = request.finalizing === true || name === 'finalize';
        const hookName = finalizing ? 'finalize' : 'sync';
        const deadline = hookDeadline(request.controller, hookName, receivedAtMs);
        const outcome = await (finalizing ? finalize : sync)(request, context, deadline);
        if (outcome.decision === 'behind') {
          // Metacontroller's one "try again later" that is not an error: a 429 with Retry-After
          // requeues the parent without a SyncError event, and nothing it holds is applied.
          const retryAfter = retryAfterHeader(outcome.response.resyncAfterSeconds);
          res.status(429).set('Retry-After', retryAfter)
            .json({ error: `the children in this request are older than the token issued last; retry in ${retryAfter}s` });
        } else {
          res.json(outcome.response);
        }
        const durationMs = performance.now() - started;
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
      } catch (error) {
        next(error);
      }
    };

  app.post('/sync', ...guard, hook('sync'));
  app.post('/finalize', ...guard, hook('finalize'));
  app.post('/customize', ...guard, (req, res, next) => {
    try {
      res.json(customize(parseHookRequest<CustomizeRequest>(req)));
    } catch (error) {
      next(error);
    }
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: the hooks are POST /sync, /customize and /finalize (and /metrics is on METRICS_PORT)' });
  });

  // Express's error handler signature needs all four parameters.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const httpError = error as { status?: number; type?: string };
    let status: number;
    let message: string;
    if (error instanceof BadRequest) {
      [status, message] = [400, error.message];
    } else if (httpError.type === 'entity.too.large') {
      [status, message] = [413, `the body is larger than ${options.maxBodyBytes} bytes`];
    } else if (httpError.type === 'entity.parse.failed') {
      [status, message] = [400, 'the body is not valid JSON'];
    } else if (typeof httpError.status === 'number' && httpError.status >= 400 && httpError.status < 500) {
      [status, message] = [httpError.status, 'the request could not be read'];
    } else {
      [status, message] = [500, 'internal error; see the webhook log'];
      // Only the error's class and message: they come from this code and the API servers, never from a Secret.
      context.log.error('hook failed', { path: req.path, error: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
    }
    options.metrics.observeRejected(req.path.slice(1), status === 500 ? 'internal_error' : 'bad_request');
    context.log.debug('hook rejected', { path: req.path, status, error: message });
    res.status(status).json({ error: message });
  });
  return app;
}
