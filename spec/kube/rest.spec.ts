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
import { Deadline, KubeApiError, KubeRestClient, KubeUnreachableError, minCallMs, type ApiCallObserver } from '../../server/kube/rest.js';
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

function clientFor(url: string, timeoutMs = 2_000, observe?: ApiCallObserver): Promise<KubeRestClient> {
  const config = new KubeConfig();
  config.loadFromOptions({
    // client-node accepts a plain-http server only with skipTLSVerify.
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }], users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }], currentContext: 'c',
  });
  return KubeRestClient.create(connectionOf(config), { timeoutMs, ...(observe ? { observe } : {}) });
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
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
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
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
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
    client = await KubeRestClient.create({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bearerToken: () => token }, { timeoutMs: 2_000 });
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
      const withoutName = await KubeRestClient.create(connection, { timeoutMs: 5_000 });
      const refused = await withoutName.request('GET', '/version').catch((e: unknown) => e);
      withoutName.close();
      expect(refused).to.be.instanceOf(KubeUnreachableError);
      expect((refused as KubeUnreachableError).detail).to.contain('IP: 127.0.0.1 is not in the cert\'s list');
      client = await KubeRestClient.create({ ...connection, tlsServerName: 'kubernetes' }, { timeoutMs: 5_000 });
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
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const error = await client.request('GET', '/x').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeApiError);
    expect(error).to.include({ statusCode: 429, reason: 'TooManyRequests', retryAfterSeconds: 7 });
    expect((error as Error).message).to.equal('GET /x: slow down');
  });

  it('gives up on a server that does not answer within the timeout', async function () {
    ({ server } = await serve(() => undefined));
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 300);
    const started = Date.now();
    const error = await client.request('GET', '/slow').catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeUnreachableError);
    expect((error as KubeUnreachableError).detail).to.contain('no answer within 300 ms');
    expect(Date.now() - started).to.be.below(2_000);
  });

  it('cuts a call short when the hook\'s deadline comes before the client\'s own timeout', async function () {
    ({ server } = await serve(() => undefined));
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 5_000);
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
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const error = await client.request('POST', '/api/v1/namespaces/default/serviceaccounts/sa/token', {},
      { deadline: new Deadline(Date.now() + minCallMs / 2) }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(KubeUnreachableError);
    expect((error as KubeUnreachableError).detail).to.contain('not started');
    await client.request('GET', '/version');
    expect(arrived).to.equal(1);
  });

  it('reports a closed port as unreachable', async function () {
    client = await clientFor('http://127.0.0.1:1');
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
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 2_000, (method, code) => seen.push([method, code]));
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
    client = await clientFor(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const bug = new TypeError('the handler has a bug');
    const error = await client.watch('/api/v1/serviceaccounts?watch=true', () => { throw bug; }, 2_000, new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).to.equal(bug);
  });
});
