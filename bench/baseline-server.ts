// The benchmark's baseline: an express server that parses the same hook request body
// with the same limits and answers a response of the same size, doing nothing else;
// over HTTPS with the webhook's certificate (TLS_CERT_FILE, TLS_KEY_FILE), as the webhook serves.
import express from 'express';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const port = Number(process.env.PORT ?? 8081);
const responseBytes = Number(process.env.RESPONSE_BYTES ?? 1000);
const response = JSON.stringify({ padding: 'x'.repeat(Math.max(0, responseBytes - 15)) });

const app = express();
app.disable('x-powered-by');
app.set('etag', false);
app.post('/sync', express.json({ limit: 1024 * 1024, strict: true }), (req, res) => {
  if (typeof req.body !== 'object' || req.body === null) {
    res.status(400).end();
    return;
  }
  res.type('application/json').send(response);
});
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
createServer({ cert: readFileSync(process.env.TLS_CERT_FILE!), key: readFileSync(process.env.TLS_KEY_FILE!) }, app).listen(port, '127.0.0.1');
