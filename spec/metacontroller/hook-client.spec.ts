// The driver's hook client refuses what Metacontroller v4.17.2 refuses (pkg/hooks/webhook.go
// Call, crypto/x509 VerifyHostname), against small local servers: no control plane.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeRestClient } from '../../server/kube/rest.js';
import type { Hook } from '../../harness/metacontroller/controller-spec.js';
import { HookClient, HookError, TooManyRequestsError } from '../../harness/metacontroller/hook-client.js';
import { answerProblems } from '../../harness/metacontroller/hook-response.js';
import { createServingPki } from '../../harness/pki.js';

/** Hooks here carry an inline CA or none: the host cluster, where Secrets live, is never read. */
const noHostCluster = {} as KubeRestClient;

interface Answer {
  statusCode: number;
  headers?: IncomingHttpHeaders;
  body?: unknown;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const answering = (next: () => Answer) => (_req: unknown, res: import('node:http').ServerResponse) => {
  const answer = next();
  res.writeHead(answer.statusCode, { 'Content-Type': 'application/json', ...answer.headers });
  res.end(JSON.stringify(answer.body ?? {}));
};

const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: Error) => error);

describe('the driver\'s hook client decodes answers as Metacontroller does', function () {
  let server: Server;
  let answer: Answer;
  let sync: HookClient;
  let customize: HookClient;

  before(async function () {
    server = createServer(answering(() => answer));
    const port = await listen(server);
    const hook = (path: string): Hook => ({ version: 'v2', webhook: { url: `http://127.0.0.1:${port}${path}` } });
    sync = await HookClient.build('sync', hook('/sync'), undefined, noHostCluster, {}, () => undefined);
    customize = await HookClient.build('customize', hook('/customize'), undefined, noHostCluster, {}, () => undefined);
  });

  after(async function () {
    sync?.close();
    customize?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('reads a 429\'s Retry-After as Go does: integer seconds or an RFC 1123 date, anything else 0 (at once, no backoff)', async function () {
    const afterSeconds = async (retryAfter: string | undefined) => {
      answer = { statusCode: 429, headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } };
      const failure = await failureOf(sync.call({}));
      expect(failure).to.be.instanceOf(TooManyRequestsError);
      return (failure as TooManyRequestsError).afterSeconds;
    };
    expect(await afterSeconds('7')).to.equal(7);
    expect(await afterSeconds('+7')).to.equal(7);
    expect(await afterSeconds(undefined)).to.equal(0);
    expect(await afterSeconds('7.5')).to.equal(0);
    // Date.parse reads both; Go's time.Parse(time.RFC1123) reads neither.
    expect(await afterSeconds('2099-01-01T00:00:00Z')).to.equal(0);
    expect(await afterSeconds('Thursday, 01-Jan-99 00:00:00 GMT')).to.equal(0);
    expect(await afterSeconds('Thu, 01 Jan 2099 00:00:00 GMT')).to.be.greaterThan(2_000_000_000);
  });

  it('fails a sync answer with a value of the wrong type, whatever the mode: resyncAfterSeconds "60", finalized "true", a child without kind', async function () {
    for (const body of [
      { status: {}, children: [], resyncAfterSeconds: '60' },
      { status: {}, children: [], finalized: 'true' },
      { status: {}, children: [{ apiVersion: 'v1', metadata: { name: 'x' } }] },
      { status: [], children: [] },
    ]) {
      answer = { statusCode: 200, body };
      const failure = await failureOf(sync.call({}));
      expect(failure, JSON.stringify(body)).to.be.instanceOf(HookError);
      expect(failure?.message, JSON.stringify(body)).to.contain("can't unmarshal webhookResponse");
    }
    answer = { statusCode: 200, body: { status: { a: 1 }, children: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } }], resyncAfterSeconds: 1.5, finalized: false } };
    expect(await sync.call({})).to.deep.equal(answer.body);
  });

  it('fails a customize answer whose rule selects with matchLabels at its top (labelSelector is the field)', async function () {
    answer = { statusCode: 200, body: { relatedResources: [{ apiVersion: 'v1', resource: 'configmaps', matchLabels: { a: 'b' } }] } };
    expect((await failureOf(customize.call({})))?.message).to.contain('unknown field "relatedResources[0].matchLabels"');
    const rules = { relatedResources: [{ apiVersion: 'v1', resource: 'configmaps', labelSelector: { matchLabels: { a: 'b' }, matchExpressions: [{ key: 'c', operator: 'Exists' }] } }] };
    answer = { statusCode: 200, body: rules };
    expect(await customize.call({})).to.deep.equal(rules);
  });

  it('types the fields of a related rule and of its selectors', function () {
    const problems = (rule: unknown) => answerProblems('customize', { relatedResources: [rule] });
    expect(problems({ apiVersion: 'v1', resource: 'x', names: 'a' }).typeErrors).to.have.length(1);
    expect(problems({ apiVersion: 'v1', resource: 'x', labelSelector: { matchLabels: { a: 1 } } }).typeErrors).to.have.length(1);
    expect(problems({ apiVersion: 'v1', resource: 'x', labelSelector: { matchLabel: { a: 'b' } } }).unknownFields)
      .to.deep.equal(['unknown field "relatedResources[0].labelSelector.matchLabel"']);
    expect(problems(null).typeErrors).to.have.length(1);
    expect(problems({ apiVersion: 'v1', resource: 'x', namespace: null, names: null })).to.deep.equal({ typeErrors: [], unknownFields: [] });
  });
});

describe('the driver\'s hook client checks the serving certificate\'s names as Go does', function () {
  let dir: string;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'hook-client-'));
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a certificate that names the host only in its CN (Go never reads the CN as a host name), accepts it as a DNS SAN', async function () {
    const pki = await createServingPki(dir, ['hook.ns']);
    const cnOnly = await pki.issueLeaf('cn-only', { commonName: 'hook.ns', extendedKeyUsage: 'serverAuth' });
    const callWith = async (certificate: { certPem: string; keyPem: string }) => {
      const server = createTlsServer({ cert: certificate.certPem, key: certificate.keyPem }, answering(() => ({ statusCode: 200, body: {} })));
      const port = await listen(server);
      const hook: Hook = { version: 'v2', webhook: { url: 'https://hook.ns:8443/sync', caBundle: { inline: pki.caCertPem } } };
      const client = await HookClient.build('sync', hook, undefined, noHostCluster, { 'hook.ns:8443': { host: '127.0.0.1', port } }, () => undefined);
      try {
        return await failureOf(client.call({}));
      } finally {
        client.close();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    };
    expect(await callWith(pki)).to.equal(undefined);
    const failure = await callWith(cnOnly);
    expect(failure).to.be.instanceOf(HookError);
    expect(failure?.message).to.contain('legacy Common Name');
  });
});
