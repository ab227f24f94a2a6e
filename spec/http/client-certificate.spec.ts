// Hook authentication by client certificate (TLS_CLIENT_CA_FILE), over real TLS handshakes.
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../server/log.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { createClientPki, createServingPki } from '../support/pki.js';
import { unreachableHostApp } from '../support/unreachable-host-app.js';

type Client = { certPem: string; keyPem: string } | undefined;

describe('hook authentication by client certificate (real TLS handshakes)', function () {
  let dir: string;
  let server: RunningServer;
  let serverCaPem: string;
  let metacontroller: Awaited<ReturnType<typeof createClientPki>>;
  let stranger: Awaited<ReturnType<typeof createClientPki>>;
  const body = JSON.stringify({ parent: { metadata: { name: 'r', namespace: 'default' } } });

  const call = (path: string, client: Client, method = 'POST') => new Promise<number>((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: server.port, path, method, servername: 'localhost', ca: serverCaPem, agent: false,
      headers: { 'Content-Type': 'application/json' }, ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? body : undefined);
  });

  before(async function () {
    this.timeout(30_000);
    dir = await mkdtemp(join(tmpdir(), 'client-certificate-'));
    await Promise.all(['server', 'metacontroller', 'stranger'].map((name) => mkdir(join(dir, name))));
    const serving = await createServingPki(join(dir, 'server'), ['localhost']);
    serverCaPem = serving.caCertPem;
    [metacontroller, stranger] = await Promise.all([
      createClientPki(join(dir, 'metacontroller'), 'metacontroller'), createClientPki(join(dir, 'stranger'), 'metacontroller'),
    ]);
    await writeFile(join(dir, 'tls.crt'), serving.certPem);
    await writeFile(join(dir, 'tls.key'), serving.keyPem);
    await writeFile(join(dir, 'client-ca.crt'), metacontroller.caCertPem);
    const app = await unreachableHostApp({ maxBodyBytes: 1024 * 1024, requireClientCertificate: true });
    server = await startServer(app, {
      port: 0, host: '127.0.0.1', shutdownTimeoutMs: 1_000, log: silentLogger,
      tls: { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), clientCaFile: join(dir, 'client-ca.crt'), pollIntervalMs: 20 },
    });
  });

  after(async function () {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a hook call with a client certificate from the configured CA', async function () {
    expect(await call('/customize', metacontroller)).to.equal(200);
  });

  it('refuses hook calls without a client certificate, or with one from another CA', async function () {
    expect(await call('/customize', undefined)).to.equal(401);
    expect(await call('/sync', stranger)).to.equal(401);
  });

  it('keeps /healthz open to probes, which present no certificate', async function () {
    expect(await call('/healthz', undefined, 'GET')).to.equal(200);
  });

  it('follows a replaced CA file without a restart', async function () {
    await writeFile(join(dir, 'client-ca.crt'), stranger.caCertPem);
    let status = 0;
    for (let attempt = 0; attempt < 100 && status !== 200; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      status = await call('/customize', stranger);
    }
    expect(status).to.equal(200);
    expect(await call('/customize', metacontroller)).to.equal(401);
  });
});
