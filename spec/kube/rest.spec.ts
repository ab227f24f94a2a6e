// The REST client's framing, timeouts and error mapping, against a local HTTP server
// that records what arrives byte for byte.
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Deadline, KubeApiError, KubeRestClient, KubeUnreachableError, minCallMs, ResponseTooLargeError, withinJsonDepth, type ApiCallObserver } from '../../server/kube/rest.js';
import { createClusterClient } from '../../server/kube/target-cluster.js';
import { startConnectProxy } from '../../harness/connect-proxy.js';
import { eventually } from '../../harness/eventually.js';
import { connectionOf } from '../../harness/connection.js';
import { createServingPki } from '../../harness/pki.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, Buffer.concat(chunks).toString(), res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function clientFor(url: string, timeoutMs = 2_000, observe?: ApiCallObserver): KubeRestClient {
  const config = new KubeConfig();
  config.loadFromOptions({
    // client-node accepts a plain-http server only with skipTLSVerify.
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }], users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c',
  });
  return new KubeRestClient(connectionOf(config), { timeoutMs, ...(observe ? { observe } : {}) });
}

describe('KubeRestClient', function () {
  let server: Server | undefined;
  let client: KubeRestClient | undefined;
  afterEach(async function () {
    client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  });

  it('frames a DELETE body so the next request on the same connection arrives intact', async function () {
    const seen: { method?: string; body: string; socket: unknown }[] = [];
    ({ server } = await serve((req, body, res) => {
      seen.push({ method: req.method, body, socket: req.socket });
      res.setHeader('Content-Type', 'application/json');
      res.end('{}');
    }));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await client.request('DELETE', '/api/v1/namespaces/default/serviceaccounts/a', { preconditions: { uid: 'u1' } });
    await client.request('GET', '/api/v1/namespaces/default/serviceaccounts/b');
    expect(seen.map((request) => request.method)).to.deep.equal(['DELETE', 'GET']);
    expect(JSON.parse(seen[0]!.body)).to.deep.equal({ preconditions: { uid: 'u1' } });
    expect(seen[1]!.body).to.equal('');
    expect(seen[1]!.socket).to.equal(seen[0]!.socket);
  });

  it('sends the kubeconfig user\'s bearer token', async function () {
    let authorization: string | undefined;
    ({ server } = await serve((req, _body, res) => {
      authorization = req.headers.authorization;
      res.end('{}');
    }));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await client.request('GET', '/version');
    expect(authorization).to.equal('Bearer test-token');
  });

  it('asks the connection for its token on every call, so a rotated token is used at once', async function () {
    const seen: (string | undefined)[] = [];
    ({ server } = await serve((req, _body, res) => {
      seen.push(req.headers.authorization);
      res.end('{}');
    }));
    let token = 'before';
    client = new KubeRestClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bearerToken: () => token }, { timeoutMs: 2_000 });
    await client.request('GET', '/version');
    token = 'after';
    await client.request('GET', '/version');
    expect(seen).to.deep.equal(['Bearer before', 'Bearer after']);
  });

  it('checks the server\'s certificate against the CA and tls-server-name, and presents the client certificate', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'rest-tls-'));
    try {
      // A certificate for "kubernetes" only, served on 127.0.0.1: valid only under tls-server-name.
      const pki = await createServingPki(dir, ['kubernetes']);
      const clientCertificate = await pki.issueLeaf('webhook', { commonName: 'webhook', extendedKeyUsage: 'clientAuth' });
      let presented: string | undefined;
      const tls = createTlsServer({ cert: pki.certPem, key: pki.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
        presented = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN);
        res.end('{}');
      });
      server = tls;
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
      const connection = { server: url, caPem: pki.caCertPem, clientCertPem: clientCertificate.certPem, clientKeyPem: clientCertificate.keyPem };
      const withoutName = new KubeRestClient(connection, { timeoutMs: 5_000 });
      const refused = await withoutName.request('GET', '/version').catch((e: unknown) => e);
      withoutName.close();
      expect(refused).to.be.instanceOf(KubeUnreachableError);
      expect((refused as KubeUnreachableError).detail).to.contain('IP: 127.0.0.1 is not in the cert\'s list');
      client = new KubeRestClient({ ...connection, tlsServerName: 'kubernetes' }, { timeoutMs: 5_000 });
      expect(await client.request('GET', '/version')).to.deep.equal({});
      expect(presented).to.equal('webhook');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('maps an error Status to KubeApiError with its reason and Retry-After', async function () {
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '7' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'slow down' }));
    }));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const error = await client.request('GET', '/x').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeApiError);
    expect(error).to.include({ statusCode: 429, reason: 'TooManyRequests', retryAfterSeconds: 7 });
    expect((error as Error).message).to.equal('GET /x: slow down');
  });

  it('gives up on a server that does not answer within the timeout', async function () {
    ({ server } = await serve(() => undefined));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 300);
    const started = Date.now();
    const error = await client.request('GET', '/slow').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeUnreachableError);
    expect((error as KubeUnreachableError).detail).to.contain('no answer within 300 ms');
    expect(Date.now() - started).to.be.below(2_000);
  });

  it('cuts a call short when the hook\'s deadline comes before the client\'s own timeout', async function () {
    ({ server } = await serve(() => undefined));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 5_000);
    const error = await client.request('GET', '/slow', undefined, { deadline: new Deadline(Date.now() + 400) }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeUnreachableError);
    const allowedMs = Number(/no answer within (\d+) ms/.exec((error as KubeUnreachableError).detail)?.[1]);
    expect(allowedMs).to.be.within(minCallMs, 400);
  });

  it('does not start a call when the hook has less than minCallMs left', async function () {
    let arrived = 0;
    ({ server } = await serve((_req, _body, res) => {
      arrived += 1;
      res.end('{}');
    }));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const error = await client.request('POST', '/api/v1/namespaces/default/serviceaccounts/sa/token', {},
      { deadline: new Deadline(Date.now() + minCallMs / 2) }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeUnreachableError);
    expect((error as KubeUnreachableError).detail).to.contain('not started');
    await client.request('GET', '/version');
    expect(arrived).to.equal(1);
  });

  it('reports a closed port as unreachable', async function () {
    client = clientFor('http://127.0.0.1:1');
    const error = await client.request('GET', '/x').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeUnreachableError);
    expect((error as Error).message).to.contain('cannot reach http://127.0.0.1:1');
  });

  it('counts each call under the status the server answered: 201 is not 200, an error its own code, no answer 0', async function () {
    ({ server } = await serve((req, _body, res) => {
      res.writeHead(req.method === 'POST' ? 201 : req.url === '/missing' ? 404 : 200, { 'Content-Type': 'application/json' });
      res.end('{}');
    }));
    const seen: [string, number][] = [];
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 2_000, (method, code) => seen.push([method, code]));
    await client.request('POST', '/api/v1/namespaces/default/serviceaccounts', {});
    await client.request('GET', '/version');
    await client.request('GET', '/missing').catch(() => undefined);
    await client.request('GET', '/late', undefined, { deadline: new Deadline(Date.now()) }).catch(() => undefined);
    expect(seen).to.deep.equal([['POST', 201], ['GET', 200], ['GET', 404], ['GET', 0]]);
  });

  it('passes on a watch handler\'s own error as it is, not as "unreachable" (which would be retried forever)', async function () {
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{}}\n');
    }));
    client = clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const bug = new TypeError('the handler has a bug');
    const error = await client.watch('/api/v1/serviceaccounts?watch=true', () => { throw bug; }, 2_000, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).to.equal(bug);
  });
});

describe('KubeRestClient against a broken or hostile server', function () {
  let server: Server | undefined;
  let client: KubeRestClient | undefined;
  const port = () => (server!.address() as AddressInfo).port;
  afterEach(async function () {
    client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server = undefined;
  });

  it('stops reading an answer past the cap, drops its connection, and says so', async function () {
    let closed = false;
    server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) { /* until the socket pushes back */ }
      };
      res.on('drain', pump);
      res.on('close', () => { closed = true; });
      pump();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000, maxResponseBytes: 1024 * 1024 });
    const error = await client.request('GET', '/api/v1/serviceaccounts').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ResponseTooLargeError);
    expect(error).to.include({ statusCode: 200, reason: 'ResponseTooLarge' });
    expect((error as Error).message).to.equal('GET /api/v1/serviceaccounts: the answer exceeds 1048576 bytes; it was not read');
    await eventually(() => closed, 'the server sees its connection dropped');
  });

  it('refuses an answer whose Content-Length is past the cap without reading it', async function () {
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(2 * 1024 * 1024) });
      res.write('{');
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000, maxResponseBytes: 1024 * 1024 });
    expect(await client.request('GET', '/x').catch((e: unknown) => e)).to.be.instanceOf(ResponseTooLargeError);
  });

  it('parses no JSON nested deeper than an object is, nor an error body past 64 KiB: a hostile answer blocks nothing (third review: 3.4 s before)', async function () {
    const nested = `${'['.repeat(4_000_000)}${']'.repeat(4_000_000)}`;
    let status = 200;
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(nested);
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000, maxResponseBytes: 9 * 1024 * 1024 });
    for (const code of [200, 403]) {
      status = code;
      const started = performance.now();
      const error = await client.request('POST', '/api/v1/namespaces/ns/serviceaccounts/sa/token').catch((e: unknown) => e);
      const ms = performance.now() - started;
      console.log(`      ${code} with 8 MB of nested arrays: ${ms.toFixed(0)} ms`);
      expect(error).to.be.instanceOf(KubeApiError).and.to.include({ statusCode: code, reason: code === 200 ? 'InvalidResponse' : 'HTTP403' });
      expect(ms).to.be.below(2_000);
    }
    expect(withinJsonDepth('{"a":[{"b":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"]"}]}')).to.equal(true);
    expect(withinJsonDepth('['.repeat(65))).to.equal(false);
  });

  it('ends a watch whose line nests deeper than an object is', async function () {
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{}}\n');
      res.write(`${'['.repeat(100)}${']'.repeat(100)}\n`);
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000 });
    const events: unknown[] = [];
    const error = await client.watch('/api/v1/serviceaccounts?watch=true', (event) => events.push(event), 10_000, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(events).to.have.length(1);
    expect(error).to.be.instanceOf(Error);
  });

  it('ends a watch that streams more than 16 longest lines in all, however well formed its events', async function () {
    const line = `${JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'x'.repeat(1_000) } } })}\n`;
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const timer = setInterval(() => res.write(line.repeat(16)), 1);
      res.on('close', () => clearInterval(timer));
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000, maxResponseBytes: 64 * 1024 });
    let events = 0;
    const error = await client.watch('/api/v1/serviceaccounts?watch=true', () => { events += 1; }, 10_000, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ResponseTooLargeError);
    expect((error as Error).message).to.contain('the watch, all its events').and.to.contain(String(16 * 64 * 1024));
    expect(events * line.length).to.be.at.most(16 * 64 * 1024);
  });

  it('reads at most 1 MiB of an answer from a target cluster (createClusterClient), 8 MiB from the host', async function () {
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ data: 'x'.repeat(1_500_000) }));
    }));
    const connection = { server: `http://127.0.0.1:${port()}` };
    const target = createClusterClient(connection, { timeoutMs: 10_000 }, 'target');
    const host = createClusterClient(connection, { timeoutMs: 10_000 }, 'host');
    try {
      expect(await target.request('GET', '/x').catch((e: unknown) => e)).to.be.instanceOf(ResponseTooLargeError);
      expect(await host.request<{ data: string }>('GET', '/x')).to.have.nested.property('data.length', 1_500_000);
    } finally {
      target.close();
      host.close();
    }
  });

  it('stops a watch whose line never ends past the cap', async function () {
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{}}\n');
      const timer = setInterval(() => res.write('x'.repeat(64 * 1024)), 1);
      res.on('close', () => clearInterval(timer));
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000, maxResponseBytes: 1024 * 1024 });
    const events: unknown[] = [];
    const error = await client.watch('/api/v1/serviceaccounts?watch=true', (event) => events.push(event), 10_000, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(events).to.have.length(1);
    expect(error).to.be.instanceOf(ResponseTooLargeError);
  });

  it('reads a 7.9 MB watch line sent in 2 kB pieces in linear time (prints the time)', async function () {
    this.timeout(60_000);
    const piece = 'x'.repeat(2_000);
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write('{"type":"ADDED","object":{"metadata":{"name":"');
      let sent = 0;
      const pump = () => {
        if (res.destroyed) return;
        if (sent >= 7_900_000) {
          res.end('"}}}\n');
          return;
        }
        res.write(piece);
        sent += piece.length;
        // One piece per turn of the event loop, so that the client receives them one by one.
        setImmediate(pump);
      };
      pump();
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000 });
    const names: number[] = [];
    const started = performance.now();
    const cpuBefore = process.cpuUsage();
    await client.watch('/api/v1/serviceaccounts?watch=true',
      (event) => names.push((event as { object: { metadata: { name: string } } }).object.metadata.name.length), 60_000, new AbortController().signal);
    const wallMs = Math.round(performance.now() - started);
    const cpu = process.cpuUsage(cpuBefore);
    console.log(`      7.9 MB line in 2 kB pieces: ${wallMs} ms wall, ${Math.round((cpu.user + cpu.system) / 1_000)} ms CPU (server and client)`);
    expect(names).to.deep.equal([7_900_000]);
    expect(wallMs).to.be.below(5_000);
  });

  it('joins a line split across chunks inside a multi-byte UTF-8 character, and several lines in one chunk', async function () {
    const first = JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'é€😀-a' } } });
    const second = JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'ü-b' } } });
    const third = JSON.stringify({ type: 'DELETED', object: { metadata: { name: '😀-c' } } });
    const bytes = Buffer.from(`${first}\n${second}\n\n${third}\n`);
    // Cut inside é (2 bytes), inside € (3 bytes) and inside 😀 (4 bytes) of the first line.
    const at = (text: string) => bytes.indexOf(Buffer.from(text));
    const cuts = [at('é') + 1, at('€') + 2, at('😀') + 3, at('-a') + 1, bytes.length - 3];
    ({ server } = await serve((_req, _body, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      let from = 0;
      const send = (index: number) => {
        if (res.destroyed) return;
        const to = index < cuts.length ? cuts[index]! : bytes.length;
        res.write(bytes.subarray(from, to));
        from = to;
        if (index < cuts.length) setTimeout(() => send(index + 1), 20);
        else res.end();
      };
      send(0);
    }));
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 10_000 });
    const events: unknown[] = [];
    await client.watch('/api/v1/serviceaccounts?watch=true', (event) => events.push(event), 10_000, new AbortController().signal);
    expect(events).to.deep.equal([JSON.parse(first), JSON.parse(second), JSON.parse(third)]);
  });

  it('closes a pooled connection once it has been idle for idleSocketTimeoutMs, before the server would', async function () {
    let closed = 0;
    ({ server } = await serve((req, _body, res) => {
      req.socket.once('close', () => { closed += 1; });
      res.end('{}');
    }));
    server.keepAliveTimeout = 60_000;
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 5_000, idleSocketTimeoutMs: 200 });
    await client.request('GET', '/x');
    expect(closed, 'kept for the next call').to.equal(0);
    await eventually(() => closed === 1, 'the idle connection closed by the client');
  });

  it('sends an idempotent call again on a new connection when the pooled one was closed by the server meanwhile, but not a POST', async function () {
    const connections = new Set<unknown>();
    let dropReused = false;
    server = createServer((req, res) => {
      const reused = connections.has(req.socket);
      connections.add(req.socket);
      // What a server closing an idle connection at the moment it is reused looks like to the client.
      if (reused && dropReused) {
        req.socket.destroy();
        return;
      }
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const seen: [string, number][] = [];
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}` }, { timeoutMs: 5_000, observe: (method, code) => seen.push([method, code]) });
    await client.request('GET', '/first');
    dropReused = true;
    for (const method of ['GET', 'PUT', 'DELETE']) {
      expect(await client.request(method, '/again', method === 'GET' ? undefined : {}), method).to.deep.equal({ ok: true });
    }
    const post = await client.request('POST', '/api/v1/namespaces/default/serviceaccounts/a/token', {}).catch((e: unknown) => e);
    expect(post, 'a POST may have been processed: not sent twice').to.be.instanceOf(KubeUnreachableError);
    expect(seen).to.deep.equal([['GET', 200], ['GET', 200], ['PUT', 200], ['DELETE', 200], ['POST', 0]]);
  });

  it('reads a refused token file again at once and sends the call once more with the new token', async function () {
    const seen: (string | undefined)[] = [];
    ({ server } = await serve((req, _body, res) => {
      seen.push(req.headers.authorization);
      const accepted = req.headers.authorization === 'Bearer new';
      res.writeHead(accepted ? 200 : 401, { 'Content-Type': 'application/json' });
      res.end(accepted ? '{}' : '{"kind":"Status","reason":"Unauthorized","message":"Unauthorized"}');
    }));
    let onFile = 'old';
    let current = 'old';
    const bearerToken = (reread?: boolean) => {
      if (reread) current = onFile;
      return current;
    };
    client = new KubeRestClient({ server: `http://127.0.0.1:${port()}`, bearerToken }, { timeoutMs: 5_000 });
    const unchanged = await client.request('GET', '/x').catch((e: unknown) => e);
    expect(unchanged, 'the file still holds the refused token: no second call').to.include({ statusCode: 401 });
    expect(seen).to.deep.equal(['Bearer old']);
    onFile = 'new';
    expect(await client.request('GET', '/x')).to.deep.equal({});
    expect(seen).to.deep.equal(['Bearer old', 'Bearer old', 'Bearer new']);
  });

  it('goes through the CONNECT proxy HTTPS_PROXY names (with its credentials), and not for a host NO_PROXY names', async function () {
    const dir = await mkdtemp(join(tmpdir(), 'rest-proxy-'));
    const proxy = await startConnectProxy({ hosts: { 'only-the-proxy-knows.test': '127.0.0.1' }, credentials: 'user:p@ss' });
    try {
      const pki = await createServingPki(dir, ['localhost']);
      const tls = createTlsServer({ cert: pki.certPem, key: pki.keyPem }, (_req, res) => res.end('{"through":"tls"}'));
      server = tls;
      await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
      const connection = { server: `https://only-the-proxy-knows.test:${port()}`, caPem: pki.caCertPem, tlsServerName: 'localhost' };
      const proxyUrl = proxy.url.replace('http://', 'http://user:p%40ss@');
      client = new KubeRestClient(connection, { timeoutMs: 5_000, env: { HTTPS_PROXY: proxyUrl } });
      expect(await client.request('GET', '/version')).to.deep.equal({ through: 'tls' });
      expect(proxy.tunnels).to.deep.equal([`only-the-proxy-knows.test:${port()}`]);
      client.close();

      client = new KubeRestClient(connection, { timeoutMs: 5_000, env: { HTTPS_PROXY: proxyUrl, NO_PROXY: '.test' } });
      const direct = await client.request('GET', '/version').catch((e: unknown) => e);
      expect(direct, 'not proxied: the name resolves nowhere').to.be.instanceOf(KubeUnreachableError);
      expect(proxy.tunnels).to.have.length(1);
      client.close();

      client = new KubeRestClient(connection, { timeoutMs: 5_000, env: { HTTPS_PROXY: proxy.url } });
      const refused = await client.request('GET', '/version').catch((e: unknown) => e);
      expect((refused as KubeUnreachableError).detail).to.contain('refused a tunnel').and.contain('HTTP 407');

      client.close();
      client = new KubeRestClient(connection, { timeoutMs: 5_000, env: { HTTPS_PROXY: 'socks5://127.0.0.1:1080' } });
      const socks = await client.request('GET', '/version').catch((e: unknown) => e);
      expect((socks as KubeUnreachableError).detail).to.equal('HTTPS_PROXY is a socks5 proxy: only http and https proxies are supported');
    } finally {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
