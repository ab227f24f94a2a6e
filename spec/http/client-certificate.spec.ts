// Hook authentication by client certificate (TLS_CLIENT_CA_FILE, TLS_CLIENT_SUBJECT): the rule
// alone, then over real TLS handshakes with certificates laid out as cert-manager issues them
// (the serving and the client certificate from one CA).
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultClientSubject } from '../../server/config.js';
import { clientAuthOid, judgeClientCertificate } from '../../server/http/client-certificate.js';
import { silentLogger } from '../../server/log.js';
import { createWebhook, type Webhook } from '../../server/webhook.js';
import { createClientPki, createServingPki } from '../../harness/pki.js';
import { closedHostKubeConfig, unreachableHostConfig } from '../../harness/unreachable-host-app.js';
import { connectionOf } from '../../harness/connection.js';
import { eventually } from '../../harness/eventually.js';

const serverAuthOid = '1.3.6.1.5.5.7.3.1';
const anyExtendedKeyUsageOid = '2.5.29.37.0';

describe('the client certificate rule', function () {
  const good = { chainVerified: true, extKeyUsage: [clientAuthOid], commonName: 'metacontroller' };

  it('accepts a verified certificate for client authentication with the expected common name', function () {
    expect(judgeClientCertificate(good, 'metacontroller')).to.deep.equal({ accepted: true });
    expect(judgeClientCertificate({ ...good, extKeyUsage: [serverAuthOid, clientAuthOid] }, 'metacontroller')).to.deep.equal({ accepted: true });
  });

  for (const [what, presented, reason] of [
    ['no certificate, or one the CA did not sign', { chainVerified: false }, 'no certificate from the CA'],
    ['a certificate from another CA, even with the right usage and name', { ...good, chainVerified: false }, 'no certificate from the CA'],
    ['a serving certificate (serverAuth only)', { ...good, extKeyUsage: [serverAuthOid] }, 'not for client authentication'],
    ['a certificate without extended key usage (any purpose by X.509)', { chainVerified: true, commonName: 'metacontroller' }, 'not for client authentication'],
    ['a certificate for anyExtendedKeyUsage', { ...good, extKeyUsage: [anyExtendedKeyUsageOid] }, 'not for client authentication'],
    ['another common name', { ...good, commonName: 'dpu-credential-webhook.dpu-credential-webhook' }, 'unexpected subject'],
    ['no common name', { chainVerified: true, extKeyUsage: [clientAuthOid] }, 'unexpected subject'],
    ['two common names, one of them expected', { ...good, commonName: ['metacontroller', 'other'] }, 'unexpected subject'],
    ['a common name that only starts with the expected one', { ...good, commonName: 'metacontroller-evil' }, 'unexpected subject'],
  ] as const) {
    it(`refuses ${what}`, function () {
      expect(judgeClientCertificate(presented, 'metacontroller')).to.deep.equal({ accepted: false, reason });
    });
  }
});

type Client = { certPem: string; keyPem: string } | undefined;

describe('hook authentication by client certificate (real TLS handshakes)', function () {
  let dir: string;
  let server: Webhook;
  let serverCaPem: string;
  let serving: Client;
  let metacontroller: Client;
  let serverAuthOnly: Client;
  let noUsage: Client;
  let bothUsagesServingName: Client;
  let otherName: Client;
  let stranger: Awaited<ReturnType<typeof createClientPki>>;
  const body = JSON.stringify({ parent: { metadata: { name: 'r', namespace: 'default' } } });

  const call = (path: string, client: Client, method = 'POST') => new Promise<{ status: number; error: string }>((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: server.port, path, method, servername: 'localhost', ca: serverCaPem, agent: false,
      headers: { 'Content-Type': 'application/json' }, ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const error = res.statusCode === 401 ? (JSON.parse(text) as { error: string }).error : '';
        resolve({ status: res.statusCode ?? 0, error });
      });
    });
    req.on('error', reject);
    req.end(method === 'POST' ? body : undefined);
  });
  const statusOf = async (path: string, client: Client, method = 'POST') => (await call(path, client, method)).status;

  before(async function () {
    this.timeout(30_000);
    dir = await mkdtemp(join(tmpdir(), 'client-certificate-'));
    await Promise.all(['server', 'stranger'].map((name) => mkdir(join(dir, name))));
    // One CA signs everything, as deploy/cert-manager's CA Issuer does.
    const pki = await createServingPki(join(dir, 'server'), ['localhost']);
    serverCaPem = pki.caCertPem;
    serving = pki;
    [metacontroller, serverAuthOnly, noUsage, bothUsagesServingName, otherName, stranger] = await Promise.all([
      pki.issueLeaf('metacontroller', { commonName: defaultClientSubject, extendedKeyUsage: 'clientAuth' }),
      pki.issueLeaf('server-auth-only', { commonName: defaultClientSubject, extendedKeyUsage: 'serverAuth' }),
      pki.issueLeaf('no-usage', { commonName: defaultClientSubject, extendedKeyUsage: null }),
      pki.issueLeaf('both-usages', { dnsNames: ['localhost'], extendedKeyUsage: 'serverAuth,clientAuth' }),
      pki.issueLeaf('other-name', { commonName: 'someone-else', extendedKeyUsage: 'clientAuth' }),
      createClientPki(join(dir, 'stranger'), defaultClientSubject),
    ]);
    await writeFile(join(dir, 'tls.crt'), pki.certPem);
    await writeFile(join(dir, 'tls.key'), pki.keyPem);
    await writeFile(join(dir, 'client-ca.crt'), pki.caCertPem);
    // TLS_CLIENT_CA_FILE and TLS_CLIENT_SUBJECT as the process reads them; the host cluster is a closed port.
    server = await createWebhook({
      config: {
        ...unreachableHostConfig,
        tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), tlsClientCaFile: join(dir, 'client-ca.crt'), tlsClientSubject: defaultClientSubject,
      },
      hostConnection: connectionOf(closedHostKubeConfig()), log: silentLogger, recordEvents: false, listenHost: '127.0.0.1',
    });
  });

  after(async function () {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a hook call with the client certificate: from the CA, for client authentication, CN=metacontroller', async function () {
    expect(await statusOf('/customize', metacontroller)).to.equal(200);
  });

  it('refuses the webhook\'s own serving certificate (serverAuth only, same CA) presented as a client certificate', async function () {
    expect(await statusOf('/customize', serving)).to.equal(401);
    expect(await statusOf('/sync', serverAuthOnly)).to.equal(401);
  });

  it('refuses a certificate from the CA without extended key usage, which the TLS handshake alone accepts', async function () {
    const answer = await call('/sync', noUsage);
    expect(answer.status).to.equal(401);
    // Refused by the webhook's own rule, not by the handshake: the chain was verified.
    expect(answer.error).to.contain('(not for client authentication)');
  });

  it('refuses a certificate from the CA for client authentication under another subject', async function () {
    const both = await call('/sync', bothUsagesServingName);
    expect(both.status).to.equal(401);
    expect(both.error).to.contain('(unexpected subject)');
    const other = await call('/customize', otherName);
    expect(other.status).to.equal(401);
    expect(other.error).to.contain('(unexpected subject)');
  });

  it('refuses hook calls without a client certificate, or with one from another CA', async function () {
    expect(await statusOf('/customize', undefined)).to.equal(401);
    expect(await statusOf('/sync', stranger)).to.equal(401);
  });

  it('keeps /healthz open to probes, which present no certificate', async function () {
    expect(await statusOf('/healthz', undefined, 'GET')).to.equal(200);
  });

  it('follows a replaced CA file without a restart', async function () {
    await writeFile(join(dir, 'client-ca.crt'), stranger.caCertPem);
    await eventually(async () => await statusOf('/customize', stranger) === 200, 'the new CA is read', { timeoutMs: 2_000, intervalMs: 20 });
    expect(await statusOf('/customize', stranger)).to.equal(200);
    expect(await statusOf('/customize', metacontroller)).to.equal(401);
  });
});
