// The benchmark's baseline: an express server that parses the same hook request body
// with the same limits and answers a response of the same size, doing nothing else;
// over HTTPS with the webhook's certificate (TLS_CERT_FILE, TLS_KEY_FILE), as the webhook serves.
// BASELINE_FRAMEWORK=none: the same on node:http alone, as the webhook has served its hook calls
// since issue 26 (the express baseline then also measures express's own cost, which the webhook no longer pays).
import express from 'express';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';

const port = Number(process.env.PORT ?? 8081);
const responseBytes = Number(process.env.RESPONSE_BYTES ?? 1000);
const response = JSON.stringify({ padding: 'x'.repeat(Math.max(0, responseBytes - 15)) });
const limitBytes = 1024 * 1024;

function expressApp() {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.post('/sync', express.json({ limit: limitBytes, strict: true }), (req, res) => {
    if (typeof req.body !== 'object' || req.body === null) {
      res.status(400).end();
      return;
    }
    res.type('application/json').send(response);
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  return app;
}

function answer(res: ServerResponse, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(body);
}

function nodeApp(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET' && req.url === '/healthz') return answer(res, 200, '{"status":"ok"}');
  if (req.method !== 'POST' || req.url !== '/sync') return answer(res, 404, '{}');
  const chunks: Buffer[] = [];
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= limitBytes) chunks.push(chunk);
  });
  req.on('end', () => {
    let body: unknown;
    try {
      body = bytes <= limitBytes ? JSON.parse(Buffer.concat(chunks, bytes).toString('utf8')) : undefined;
    } catch {
      body = undefined;
    }
    const isObject = typeof body === 'object' && body !== null;
    answer(res, isObject ? 200 : 400, isObject ? response : '{}');
  });
}

const app = process.env.BASELINE_FRAMEWORK === 'none' ? nodeApp : expressApp();
createServer({ cert: readFileSync(process.env.TLS_CERT_FILE!), key: readFileSync(process.env.TLS_KEY_FILE!) }, app).listen(port, '127.0.0.1');
