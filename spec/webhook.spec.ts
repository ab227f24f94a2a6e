// createWebhook: what main.ts starts, here with a host cluster that is a closed port: the
// hooks and probes on PORT, /metrics alone on METRICS_PORT, the hook token when a file is
// configured, and a stop that closes both ports.
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { defaultPolicy } from '../server/credential/policy.js';
import { silentLogger } from '../server/log.js';
import { createWebhook, type WebhookDeps } from '../server/webhook.js';
import { closedHostKubeConfig, unreachableHostConfig } from '../harness/unreachable-host-app.js';
import { connectionOf } from '../harness/connection.js';
import { insecureAppOf } from '../harness/insecure-app.js';

const deps = (config: Partial<WebhookDeps['config']> = {}): WebhookDeps => ({
  config: { ...unreachableHostConfig, ...config }, hostConnection: connectionOf(closedHostKubeConfig()), log: silentLogger, recordEvents: false, listenHost: '127.0.0.1',
});
/** The status of one call on a connection of its own, or the error code of the connection. */
const statusOf = (port: number, path: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}) =>
  new Promise<number | string | undefined>((resolve) => {
    const call = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    call.on('error', (error: NodeJS.ErrnoException) => resolve(error.code));
    call.end(options.body);
  });

describe('createWebhook', function () {
  it('serves the hooks and probes on PORT and /metrics alone on METRICS_PORT, and stop() closes both', async function () {
    const webhook = await createWebhook(deps({ metricsPort: 0 }));
    const { port, metricsPort } = webhook;
    expect(metricsPort).to.be.a('number').and.not.equal(port);
    try {
      expect(await statusOf(port, '/healthz')).to.equal(200);
      expect(await statusOf(port, '/readyz')).to.equal(503);
      expect(await statusOf(port, '/metrics')).to.equal(404);
      expect(await statusOf(metricsPort!, '/metrics')).to.equal(200);
      expect(await statusOf(metricsPort!, '/healthz')).to.equal(404);
    } finally {
      await webhook.stop();
    }
    expect(await statusOf(port, '/healthz')).to.equal('ECONNREFUSED');
    expect(await statusOf(metricsPort!, '/metrics')).to.equal('ECONNREFUSED');
  });

  it('opens no metrics port when METRICS_PORT is not configured, and puts the configured policy on the hook context', async function () {
    const policy = { ...defaultPolicy, maxTokenDurationSeconds: 3_600 };
    const webhook = await createWebhook(deps({ policy }));
    try {
      expect(webhook.metricsPort).to.equal(undefined);
      expect(webhook.context.policy).to.equal(policy);
    } finally {
      await webhook.stop();
    }
  });

  it('requires the token in HOOK_BEARER_TOKEN_FILE on the hooks when it is set, and only then', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'create-webhook-'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'hook-token\n');
    const body = JSON.stringify({ parent: { metadata: { name: 'x', namespace: 'default' } } });
    const customize = (port: number, token?: string) => statusOf(port, '/customize', {
      method: 'POST', body, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    });
    const guarded = await createWebhook(deps({ hookBearerTokenFile: tokenFile }));
    const open = await createWebhook(deps());
    try {
      expect(await customize(guarded.port)).to.equal(401);
      expect(await customize(guarded.port, 'wrong')).to.equal(401);
      expect(await customize(guarded.port, 'hook-token')).to.equal(200);
      expect(await customize(open.port)).to.equal(200);
      // insecureAppOf: the same hooks without the token (the tests' plain listener).
      await request(insecureAppOf(guarded)).post('/customize').set('content-type', 'application/json').send(body).expect(200);
    } finally {
      await Promise.all([guarded.stop(), open.stop()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
