// HTTP: routes, request-shape checks, body limits and error mapping. The hooks do the work.
import express, { type NextFunction, type Request, type Response } from 'express';
import { customize } from './hooks/customize.js';
import { finalize } from './hooks/finalize.js';
import { sync, type SyncOutcome } from './hooks/sync.js';
import type { HookContext } from './hooks/context.js';
import type { SyncRequest, CustomizeRequest } from './metacontroller.js';

export interface AppOptions {
  maxBodyBytes: number;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Why a body is not a hook request, or undefined when it is one. */
function hookRequestProblem(body: unknown): string | undefined {
  if (!isRecord(body)) return 'the body must be a JSON object';
  if (!isRecord(body.parent)) return 'parent: required, the DPUServiceCredentialRequest';
  const metadata = body.parent.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || !metadata.name
    || typeof metadata.namespace !== 'string' || !metadata.namespace) {
    return 'parent.metadata.name and parent.metadata.namespace: required strings';
  }
  for (const field of ['children', 'related'] as const) {
    const value = body[field];
    if (value !== undefined && value !== null && (!isRecord(value) || !Object.values(value).every((group) => group === null || isRecord(group)))) {
      return `${field}: must map "Kind.version" to objects keyed "namespace/name"`;
    }
  }
  if (body.finalizing !== undefined && typeof body.finalizing !== 'boolean') return 'finalizing: must be a boolean';
  return undefined;
}

class BadRequest extends Error {}

function parseHookRequest<T>(req: Request): T {
  const problem = hookRequestProblem(req.body);
  if (problem) throw new BadRequest(`not a Metacontroller hook request: ${problem}`);
  return req.body as T;
}

export function createApp(context: HookContext, options: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const requireJson = (req: Request, res: Response, next: NextFunction) => {
    if (!req.is('application/json')) {
      res.status(415).json({ error: 'hook requests must be application/json' });
      return;
    }
    next();
  };
  const jsonBody = express.json({ limit: options.maxBodyBytes, strict: true });

  const hook = (name: 'sync' | 'finalize', run: (request: SyncRequest, context: HookContext) => Promise<SyncOutcome>) =>
    async (req: Request, res: Response, next: NextFunction) => {
      const started = performance.now();
      try {
        const request = parseHookRequest<SyncRequest>(req);
        const outcome = await (request.finalizing && name === 'sync' ? finalize : run)(request, context);
        res.json(outcome.response);
        context.log.info('hook', {
          hook: name,
          namespace: request.parent.metadata?.namespace,
          name: request.parent.metadata?.name,
          decision: outcome.decision,
          reason: outcome.reason,
          durationMs: Math.round(performance.now() - started),
        });
      } catch (error) {
        next(error);
      }
    };

  app.post('/sync', requireJson, jsonBody, hook('sync', sync));
  app.post('/finalize', requireJson, jsonBody, hook('finalize', finalize));
  app.post('/customize', requireJson, jsonBody, (req, res, next) => {
    try {
      res.json(customize(parseHookRequest<CustomizeRequest>(req)));
    } catch (error) {
      next(error);
    }
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'not found: the hooks are POST /sync, /customize and /finalize' });
  });

  // Express's error handler signature needs all four parameters.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const httpError = error as { status?: number; type?: string };
    if (error instanceof BadRequest) {
      res.status(400).json({ error: error.message });
    } else if (httpError.type === 'entity.too.large') {
      res.status(413).json({ error: `the body is larger than ${options.maxBodyBytes} bytes` });
    } else if (httpError.type === 'entity.parse.failed') {
      res.status(400).json({ error: 'the body is not valid JSON' });
    } else if (typeof httpError.status === 'number' && httpError.status >= 400 && httpError.status < 500) {
      res.status(httpError.status).json({ error: 'the request could not be read' });
    } else {
      context.log.error('hook failed', { path: req.path, error: error instanceof Error ? `${error.name}: ${error.message}` : 'unknown' });
      res.status(500).json({ error: 'internal error; see the webhook log' });
    }
  });
  return app;
}
