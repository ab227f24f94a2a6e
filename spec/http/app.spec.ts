// The HTTP layer alone: what is and is not a hook request. Nothing here reaches a cluster:
// the host kubeconfig points at a closed port, and every request is answered before it.
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import request from 'supertest';
import { createMetricsApp } from '../../server/app.js';
import { HookTokens } from '../../server/http/bearer-auth.js';
import { Metrics } from '../../server/metrics.js';
import { unreachableHostApp } from '../../harness/unreachable-host-app.js';
import { eventually } from '../../harness/eventually.js';

const maxBodyBytes = 64 * 1024;

const testApp = (hookTokens?: HookTokens, metrics?: Metrics) =>
  unreachableHostApp({ maxBodyBytes, ...(hookTokens ? { hookTokens } : {}), ...(metrics ? { metrics } : {}), now: () => new Date('2026-01-01T00:00:00Z') });

const parent = (spec: unknown) => ({
  apiVersion: 'svc.dpu.nvidia.com/v1alpha1',
  kind: 'DPUServiceCredentialRequest',
  metadata: { name: 'r', namespace: 'default', uid: 'u', generation: 1 },
  spec,
});

/** The status line of the answer to a request written by hand on a new connection. */
function statusLineOf(port: number, written: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(written));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

describe('HTTP layer', function () {
  let app: Awaited<ReturnType<typeof testApp>>;
  const metrics = new Metrics();
  before(async function () {
    app = await testApp(undefined, metrics);
  });

  it('answers /healthz', async function () {
    await request(app).get('/healthz').expect(200, { status: 'ok' });
  });

  it('answers 415 for a body that is not JSON', async function () {
    const res = await request(app).post('/sync').set('Content-Type', 'text/plain').send('hello').expect(415);
    expect(res.body.error).to.contain('application/json');
  });

  it('answers 400 for malformed JSON', async function () {
    const res = await request(app).post('/sync').set('Content-Type', 'application/json').send('{"parent": ').expect(400);
    expect(res.body.error).to.equal('the body is not valid JSON');
  });

  for (const [what, body, message] of [
    ['an array', [], 'the body must be a JSON object'],
    ['a body without parent', { children: {} }, 'parent: required'],
    ['a parent without namespace', { parent: { metadata: { name: 'r' } } }, 'parent.metadata.name and parent.metadata.namespace'],
    ['children that are not a map of maps', { parent: parent({}), children: { 'Secret.v1': 5 } }, 'children: must map'],
    ['finalizing that is not a boolean', { parent: parent({}), finalizing: 'yes' }, 'finalizing: must be a boolean'],
    ['a child that is null', { parent: parent({}), children: { 'Secret.v1': { 'default/s': null } } }, 'children: must map'],
    ['Secret data that is not strings', { parent: parent({}), children: { 'Secret.v1': { 'default/s': { data: { TOKEN_FILE: 5 } } } } }, "a Secret's data"],
    ['status conditions that are not a list', { parent: { ...parent({}), status: { conditions: 'Ready' } } }, 'parent.status.conditions'],
    ['a status serviceAccount that is not a string', { parent: { ...parent({}), status: { serviceAccount: 7 } } }, 'parent.status.serviceAccount'],
    ['annotations that are not strings', { parent: { ...parent({}), metadata: { ...parent({}).metadata, annotations: { a: 1 } } } }, 'parent.metadata.annotations'],
  ] as const) {
    it(`answers 400 for ${what}`, async function () {
      const res = await request(app).post('/sync').send(body).expect(400);
      expect(res.body.error).to.contain('not a Metacontroller hook request').and.contain(message);
    });
  }

  it('answers 413 for a body over the limit whose parent does not lie whole within the limit', async function () {
    for (const huge of [{ padding: 'x'.repeat(maxBodyBytes), parent: parent({}) }, { parent: { ...parent({}), padding: 'x'.repeat(maxBodyBytes) } }]) {
      const res = await request(app).post('/sync').send(huge).expect(413);
      expect(res.body.error).to.contain(String(maxBodyBytes)).and.contain('no readable parent');
    }
  });

  it('answers 413 for a body over the limit whose parent is not a hook request\'s, and for customize over the limit', async function () {
    const padded = { parent: { metadata: { name: 'r' } }, children: { 'Secret.v1': { 'default/pad': { data: { x: 'x'.repeat(maxBodyBytes) } } } } };
    const res = await request(app).post('/sync').send(padded).expect(413);
    expect(res.body.error).to.contain('parent.metadata.name and parent.metadata.namespace');
    await request(app).post('/customize').send({ parent: parent({}), padding: 'x'.repeat(maxBodyBytes) }).expect(413);
  });

  it('answers a sync over the limit whose parent was read with a refusal (HookBodyTooLarge) naming the largest children, and no children', async function () {
    const pad = (name: string, bytes: number) => [`default/${name}`, {
      apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default', labels: { 'controller-uid': 'u' } }, data: { pad: 'A'.repeat(bytes) },
    }];
    const children = { 'Secret.v1': Object.fromEntries([pad('cred', 100), ...[1, 2, 3, 4, 5, 6].map((n) => pad(`pad-${n}`, n * maxBodyBytes / 4))]) };
    const spec = { serviceAccount: { name: 'sa' }, type: 'kubeconfig', secret: { name: 'cred' }, duration: '1h', targetCluster: { name: 'c', namespace: 'dpf' } };
    const res = await request(app).post('/sync').send({ controller: { kind: 'CompositeController' }, parent: parent(spec), children, related: {}, finalizing: false })
      .expect(200);
    expect(res.body.children).to.deep.equal([]);
    const ready = res.body.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready).to.include({ status: 'False', reason: 'HookBodyTooLarge' });
    expect(ready.message).to.contain('over MAX_BODY_BYTES (66 kB)').and.contain('Secret default/pad-6 (98 kB)').and.contain('Secret default/pad-2 (33 kB)')
      .and.contain('among 7 children').and.contain('controller-uid=u').and.not.contain('pad-1 ');
    // The host is a closed port: the grant check (the DPUCluster is in another namespace) could not run, and says so.
    expect(ready.message).to.contain('The grants could not be checked');
    const exposition = await metrics.exposition();
    expect(exposition).to.match(/dpu_credential_hook_errors_total\{reason="HookBodyTooLarge"\} [1-9]/);
  });

  it('finalizes a request whose finalize body is over the limit as finalize would, from its status and spec', async function () {
    const children = { 'Secret.v1': { 'default/pad': { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pad', namespace: 'default' }, data: { pad: 'A'.repeat(maxBodyBytes) } } } };
    const res = await request(app).post('/finalize').send({ parent: parent({ type: 'nope' }), children, finalizing: true }).expect(200);
    expect(res.body).to.include({ finalized: true });
    expect(res.body.children).to.deep.equal([]);
    // Sent to /sync for a parent being deleted, with `finalizing` past the limit: finalize all the same.
    const deleting = { ...parent({ type: 'nope' }), metadata: { ...parent({}).metadata, deletionTimestamp: '2025-12-31T00:00:00Z' } };
    const viaSync = await request(app).post('/sync').send({ parent: deleting, children }).expect(200);
    expect(viaSync.body).to.include({ finalized: true });
  });

  it('answers 415 for a compressed body', async function () {
    await request(app).post('/sync').set('Content-Encoding', 'gzip').set('Content-Type', 'application/json').send('{}').expect(415);
  });

  it('answers 404 with the hook paths for an unknown path', async function () {
    const res = await request(app).post('/reconcile').send({}).expect(404);
    expect(res.body.error).to.contain('/sync');
  });

  it('takes hook calls on the paths express routed to them (any case, one trailing slash, a query), and only as POST', async function () {
    // The hook was reached when the body's shape is what is refused (400), not the path (404).
    for (const path of ['/SYNC', '/sync/', '/Finalize?x=1', '/customize/?']) {
      const res = await request(app).post(path).send([]).expect(400);
      expect(res.body.error, path).to.contain('must be a JSON object');
    }
    for (const path of ['/sync//', '/sync/x', '/syncx', '//sync', '/%73ync']) await request(app).post(path).send([]).expect(404);
    await request(app).get('/sync').expect(404);
    await request(app).put('/sync').send([]).expect(404);
    // Request targets supertest cannot send: the absolute form (as to a proxy) and a fragment.
    const server = createServer(app).listen(0, '127.0.0.1');
    try {
      await once(server, 'listening');
      const port = (server.address() as AddressInfo).port;
      for (const target of ['https://webhook.example:8443/sync', '/sync#fragment']) {
        expect(await statusLineOf(port, `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]`), target)
          .to.equal('HTTP/1.1 400 Bad Request');
      }
    } finally {
      server.close();
    }
  });

  it('answers hook calls with the headers express wrote, and no others of its', async function () {
    for (const res of [await request(app).post('/sync').send([]).expect(400), await request(app).post('/customize').send({ parent: parent({}) }).expect(200)]) {
      expect(res.headers['content-type']).to.equal('application/json; charset=utf-8');
      expect(Number(res.headers['content-length'])).to.equal(Buffer.byteLength(res.text));
      expect(res.headers).to.not.have.any.keys('etag', 'x-powered-by');
    }
  });

  it('reads a JSON body whatever its parameters and case, and refuses one without a body or of another JSON-like type', async function () {
    for (const type of ['application/json; charset=utf-8', 'Application/JSON', ' application/json ;charset=UTF-8']) {
      const res = await request(app).post('/sync').set('Content-Type', type).send('[]').expect(400);
      expect(res.body.error, type).to.contain('must be a JSON object');
    }
    for (const type of ['application/merge-patch+json', 'text/json', 'application/jsonx', 'application/json\u00a0', '\u00a0application/json']) {
      await request(app).post('/sync').set('Content-Type', type).send('[]').expect(415);
    }
    // No Content-Length and no Transfer-Encoding: no body (type-is's test), refused as express refused it.
    const server = createServer(app).listen(0, '127.0.0.1');
    try {
      await once(server, 'listening');
      // Written by hand: Node's client would add a Content-Length of 0.
      const noBody = await statusLineOf((server.address() as AddressInfo).port,
        'POST /sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n');
      expect(noBody).to.equal('HTTP/1.1 415 Unsupported Media Type');
    } finally {
      server.close();
    }
  });

  it('answers 200 with InvalidSpec and keeps the observed Secret, without calling any cluster', async function () {
    const observed = {
      apiVersion: 'v1', kind: 'Secret',
      metadata: {
        name: 'cred', namespace: 'default', resourceVersion: '12', uid: 'secret-uid',
        annotations: { keep: 'me', 'metacontroller.k8s.io/last-applied-configuration': '{}' },
      },
      type: 'Opaque', data: { kubeconfig: 'YQ==' },
    };
    const res = await request(app).post('/sync').send({
      parent: parent({ serviceAccount: { name: 'sa' }, type: 'kubeconfig', secret: { name: 'cred' }, duration: '5m' }),
      children: { 'Secret.v1': { 'default/cred': observed } },
    }).expect(200);
    expect(res.body.children).to.deep.equal([{
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cred', namespace: 'default', annotations: { keep: 'me' } },
      type: 'Opaque', data: { kubeconfig: 'YQ==' },
    }]);
    const ready = res.body.status.conditions.find((c: { type: string }) => c.type === 'Ready');
    expect(ready).to.include({ status: 'False', reason: 'InvalidSpec' });
    expect(ready.message).to.contain('spec.duration');
    expect(res.body.resyncAfterSeconds).to.equal(5);
    expect(Object.keys(res.body).sort()).to.deep.equal(['children', 'resyncAfterSeconds', 'status']);
  });

  it('answers customize (called only by a CompositeController of 0.3.x or earlier) naming no related resource, with or without a targetCluster', async function () {
    // Naming the DPUCluster would have Metacontroller re-sync every request on it at each of its status updates.
    const withTarget = await request(app).post('/customize')
      .send({ parent: parent({ targetCluster: { name: 'dpu-cplane-tenant1', namespace: 'dpf' } }) }).expect(200);
    expect(withTarget.body).to.deep.equal({ relatedResources: [] });
    const hostOnly = await request(app).post('/customize').send({ parent: parent({}) }).expect(200);
    expect(hostOnly.body).to.deep.equal({ relatedResources: [] });
  });

  it('keeps retrying finalize while the cluster is unreachable, however long the deletion has taken', async function () {
    const deleting = {
      ...parent({ serviceAccount: { name: 'sa' }, type: 'kubeconfig', secret: { name: 'cred' } }),
      status: { serviceAccount: 'default/sa' },
    };
    deleting.metadata = { ...deleting.metadata, deletionTimestamp: '2025-12-31T00:00:00Z' } as typeof deleting.metadata;
    const res = await request(app).post('/finalize').send({ parent: deleting, finalizing: true }).expect(200);
    expect(res.body).to.include({ finalized: false });
    expect(res.body.resyncAfterSeconds).to.equal(300);
  });

  it('finalizes at once a request that never made a ServiceAccount', async function () {
    const res = await request(app).post('/finalize').send({ parent: parent({ type: 'nope' }), finalizing: true }).expect(200);
    expect(res.body).to.include({ finalized: true });
    expect(res.body.children).to.deep.equal([]);
  });

  it('answers /readyz with 503 while the host cluster cannot be reached', async function () {
    const res = await request(app).get('/readyz').expect(503);
    expect(res.body.status).to.equal('host cluster unreachable');
  });

  it('serves Prometheus metrics on the metrics app, counting rejected hook calls', async function () {
    await request(app).post('/sync').send([]).expect(400);
    const res = await request(createMetricsApp(metrics)).get('/metrics').expect(200);
    expect(res.headers['content-type']).to.contain('text/plain');
    expect(res.text).to.match(/dpu_credential_hook_requests_total\{hook="sync",outcome="bad_request"\} [1-9]/);
    expect(res.text).to.match(/dpu_credential_hook_errors_total\{reason="BadRequest"\} [1-9]/);
  });

  it('keeps /metrics off the hook app, and the hooks and probes off the metrics app', async function () {
    const onHookApp = await request(app).get('/metrics').expect(404);
    expect(onHookApp.body.error).to.contain('METRICS_PORT');
    const metricsApp = createMetricsApp(metrics);
    for (const path of ['/sync', '/customize', '/finalize']) await request(metricsApp).post(path).send({}).expect(404);
    await request(metricsApp).get('/healthz').expect(404);
  });
});

describe('HTTP layer with hook authentication', function () {
  let dir: string;
  let tokens: HookTokens;
  let app: Awaited<ReturnType<typeof testApp>>;
  const body = { parent: parent({}) };

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'hook-token-'));
    await writeFile(join(dir, 'token'), 'first-token\n');
    tokens = new HookTokens(join(dir, 'token'), 20);
    app = await testApp(tokens);
  });

  after(async function () {
    tokens.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 401 to hook calls without a bearer token, with a wrong one, or with another scheme', async function () {
    await request(app).post('/customize').send(body).expect(401).expect('WWW-Authenticate', 'Bearer');
    await request(app).post('/customize').set('Authorization', 'Bearer second-token').send(body).expect(401);
    await request(app).post('/customize').set('Authorization', 'Basic Zmlyc3QtdG9rZW4=').send(body).expect(401);
  });

  it('answers 200 with the token from the file', async function () {
    await request(app).post('/customize').set('Authorization', 'Bearer first-token').send(body).expect(200);
  });

  it('checks the token before reading the body', async function () {
    await request(app).post('/sync').set('Content-Type', 'application/json').send('{"not json').expect(401);
  });

  it('takes a rotated token from the file at once, and refuses the old one from the next poll on', async function () {
    await writeFile(join(dir, 'token'), 'second-token-longer\n');
    // No wait: a token not known yet makes the files be read again before it is refused.
    await request(app).post('/customize').set('Authorization', 'Bearer second-token-longer').send(body).expect(200);
    const status = async () => (await request(app).post('/customize').set('Authorization', 'Bearer first-token').send(body)).status;
    await eventually(async () => await status() !== 200, 'the next poll has dropped first-token', { timeoutMs: 2_000, intervalMs: 20 });
    expect(await status()).to.equal(401);
    await request(app).post('/customize').set('Authorization', 'Bearer second-token-longer').send(body).expect(200);
  });

  it('accepts the token in `previous` beside the token file while it exists, and refuses it once it is gone', async function () {
    await writeFile(join(dir, 'token'), 'third-token\n');
    await writeFile(join(dir, 'previous'), 'second-token-longer\n');
    // No wait for the poll: a token not known yet makes the files be read again at once.
    await request(app).post('/customize').set('Authorization', 'Bearer second-token-longer').send(body).expect(200);
    await request(app).post('/customize').set('Authorization', 'Bearer third-token').send(body).expect(200);
    await rm(join(dir, 'previous'));
    const status = async () => (await request(app).post('/customize').set('Authorization', 'Bearer second-token-longer').send(body)).status;
    await eventually(async () => await status() !== 200, 'the next poll has dropped second-token-longer', { timeoutMs: 2_000, intervalMs: 20 });
    expect(await status()).to.equal(401);
    await request(app).post('/customize').set('Authorization', 'Bearer third-token').send(body).expect(200);
  });

  it('keeps /healthz open for probes', async function () {
    await request(app).get('/healthz').expect(200);
  });
});
