// A test oracle for the hand-written kubeconfig loaders (issue 24 point 7): every kubeconfig
// the tests use is read by ours (kubeconfig.ts for a DPUCluster's, connection.ts for the
// host's) and by @kubernetes/client-node's KubeConfig, the loader they replaced, as client-node
// applies it to a request (applyToHTTPSOptions: CA, client certificate and key, TLS server
// name, the bearer token). Both must reach the same server with the same material. Where ours
// refuses on purpose (exec and auth-provider users; files, a proxy or skipped verification in
// a DPUCluster's kubeconfig), the refusal is asserted and client-node's reading shown.
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ControlPlane } from '../../harness/control-plane.js';
import { tokenKubeConfig } from '../../harness/kube-helpers.js';
import { createControlPlanePki, type ControlPlanePki } from '../../harness/pki.js';
import { loadKubeconfigFile, type ClusterConnection } from '../../server/kube/connection.js';
import { InvalidKubeconfigError, loadKubeconfig } from '../../server/kube/kubeconfig.js';
import { withoutTrailingSlashes } from '../../server/kube/kubeconfig-text.js';

/** What a request is made with: the same fields from either loader. */
interface Applied {
  server: string;
  caPem?: string;
  tlsServerName?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  token?: string;
  insecureSkipTlsVerify?: boolean;
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const defined = (applied: Applied): Applied =>
  Object.fromEntries(Object.entries(applied).filter(([, value]) => value !== undefined)) as unknown as Applied;

function ours({ bearerToken, ...connection }: ClusterConnection): Applied {
  return defined({ ...connection, token: bearerToken?.() });
}

/** client-node's reading, as it applies it to an HTTPS request; `path` when it reads the file itself (relative paths). */
async function clientNodes(text: string, path?: string): Promise<Applied> {
  const config = new KubeConfig();
  if (path) config.loadFromFile(path);
  else config.loadFromString(text);
  const options: RequestOptions & { headers: Record<string, string> } = { headers: {} };
  await config.applyToHTTPSOptions(options);
  const authorization = String(options.headers.Authorization ?? '') || undefined;
  return defined({
    // client-node keeps a trailing slash, and adds one when it joins a path: the same URLs either way.
    server: withoutTrailingSlashes(config.getCurrentCluster()!.server),
    caPem: options.ca === undefined ? undefined : String(options.ca),
    tlsServerName: options.servername ?? undefined,
    clientCertPem: options.cert?.toString(),
    clientKeyPem: options.key?.toString(),
    token: authorization?.startsWith('Bearer ') ? authorization.slice('Bearer '.length) : undefined,
    insecureSkipTlsVerify: options.rejectUnauthorized === false ? true : undefined,
  });
}

const caPem = '-----BEGIN CERTIFICATE-----\nMIIBY2E=\n-----END CERTIFICATE-----\n';
const certPem = '-----BEGIN CERTIFICATE-----\nMIIBY2VydA==\n-----END CERTIFICATE-----\n';
const keyPem = '-----BEGIN PRIVATE KEY-----\nMIIBa2V5\n-----END PRIVATE KEY-----\n';

/** The shape of spec/kube/kubeconfig.spec.ts's and connection.spec.ts's inline kubeconfigs. */
function kubeconfig(options: { cluster?: Record<string, unknown>; user?: Record<string, unknown>; extra?: Record<string, unknown> } = {}): string {
  return stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [
      { name: 'other', cluster: { server: 'https://other.example:6443', 'certificate-authority-data': b64(caPem) } },
      { name: 'kubernetes', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': b64(caPem), ...options.cluster } },
    ],
    users: [
      { name: 'other', user: { token: 'other-token' } },
      { name: 'kubernetes-admin', user: { 'client-certificate-data': b64(certPem), 'client-key-data': b64(keyPem), ...options.user } },
    ],
    contexts: [
      { name: 'other', context: { cluster: 'other', user: 'other' } },
      { name: 'kubernetes-admin@kubernetes', context: { cluster: 'kubernetes', user: 'kubernetes-admin' } },
    ],
    'current-context': 'kubernetes-admin@kubernetes',
    ...options.extra,
  });
}
const tokenUser = { 'client-certificate-data': undefined, 'client-key-data': undefined, token: 'abc.def-ghi' };

describe('the kubeconfig loaders against client-node\'s KubeConfig (a test oracle)', function () {
  let dir: string;
  let pki: ControlPlanePki;

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'kubeconfig-oracle-'));
    pki = await createControlPlanePki(dir, 'oracle');
  });
  after(async function () {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The kubeconfigs the tests hand the webhook, by where they come from. */
  const used: [string, () => string][] = [
    // harness/control-plane.ts: every control plane's admin.conf (the host's, and every DPUCluster's Secret).
    ['the control plane\'s admin kubeconfig (harness)', () => ControlPlane.prototype.adminKubeconfigYaml.call(
      { name: 'oracle', server: 'https://127.0.0.1:42001', pki } as unknown as ControlPlane)],
    // harness/kube-helpers.ts: a ServiceAccount token's kubeconfig (tests acting as another identity).
    ['a token kubeconfig (harness tokenKubeConfig)', () => tokenKubeConfig('https://127.0.0.1:42001', pki.caCertPem, 'eyJhbGciOi.x.y').exportConfig()],
    ['a kubeadm admin.conf with a client certificate (kubeconfig.spec.ts)', () => kubeconfig()],
    ['a bearer-token user', () => kubeconfig({ user: tokenUser })],
    ['an IPv6 server with a trailing slash and tls-server-name', () => kubeconfig({ cluster: { server: 'https://[fd00::1]:6443/', 'tls-server-name': 'kubernetes.default' } })],
    ['a server without a port', () => kubeconfig({ cluster: { server: 'https://api.example.com' } })],
    ['base64 wrapped over lines', () => kubeconfig({ cluster: { 'certificate-authority-data': b64(caPem).replace(/.{16}/g, '$&\n') } })],
    ['a kubeconfig of one cluster, user and context', () => stringify({
      apiVersion: 'v1', kind: 'Config',
      clusters: [{ name: 'only', cluster: { server: 'https://10.0.0.2:6443', 'certificate-authority-data': b64(caPem) } }],
      users: [{ name: 'only', user: { token: 'only-token' } }],
      contexts: [{ name: 'only', context: { cluster: 'only', user: 'only' } }],
      'current-context': 'only',
    })],
  ];

  for (const [index, [what, textOf]] of used.entries()) {
    it(`reads ${what} as client-node does: as a DPUCluster's and as the host's`, async function () {
      const text = textOf();
      const expected = await clientNodes(text);
      expect(expected.server).to.match(/^https:\/\//);
      expect(expected.caPem, 'client-node found a CA').to.contain('BEGIN CERTIFICATE');
      expect(ours(loadKubeconfig(text).connection), 'kubeconfig.ts').to.deep.equal(expected);
      const path = join(dir, `used-${index}.kubeconfig`);
      await writeFile(path, text);
      expect(ours(loadKubeconfigFile(path)), 'connection.ts').to.deep.equal(expected);
    });
  }

  it('reads the host\'s files as client-node does: CA, certificate and key paths relative to the kubeconfig, token-file', async function () {
    await writeFile(join(dir, 'ca.crt'), caPem);
    await writeFile(join(dir, 'client.crt'), certPem);
    await writeFile(join(dir, 'client.key'), keyPem);
    await writeFile(join(dir, 'token'), 'file-token\n');
    for (const [what, text] of [
      ['relative certificate paths', kubeconfig({
        cluster: { 'certificate-authority-data': undefined, 'certificate-authority': 'ca.crt' },
        user: { 'client-certificate-data': undefined, 'client-key-data': undefined, 'client-certificate': 'client.crt', 'client-key': join(dir, 'client.key') },
      })],
      ['a token-file', kubeconfig({ user: { 'client-certificate-data': undefined, 'client-key-data': undefined, 'token-file': join(dir, 'token') } })],
      ['insecure-skip-tls-verify (a test host: spec/process/insecure-start.spec.ts)', kubeconfig({ cluster: { 'certificate-authority-data': undefined, 'insecure-skip-tls-verify': true } })],
    ] as const) {
      const path = join(dir, `files-${what.length}.kubeconfig`);
      await writeFile(path, text);
      const expected = await clientNodes(text, path);
      // client-node keeps the token file's line break; the header it sends is trimmed by Node, and ours trims it.
      if (expected.token) expected.token = expected.token.trim();
      expect(ours(loadKubeconfigFile(path)), what).to.deep.equal(expected);
    }
  });

  for (const [what, user, message] of [
    ['an exec plugin', { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: '/bin/sh', args: ['-c', 'id'] } }, 'exec'],
    ['an auth provider', { 'auth-provider': { name: 'oidc', config: { 'id-token': 'x', 'client-id': 'y', 'idp-issuer-url': 'https://idp' } } }, 'auth-provider'],
  ] as const) {
    it(`refuses ${what}, which client-node would run or use: as a DPUCluster's and as the host's`, async function () {
      const text = kubeconfig({ user: { 'client-certificate-data': undefined, 'client-key-data': undefined, ...user } });
      const config = new KubeConfig();
      config.loadFromString(text);
      expect(Object.keys(config.getCurrentUser()!), 'client-node reads it').to.include(message === 'exec' ? 'exec' : 'authProvider');
      expect(() => loadKubeconfig(text)).to.throw(InvalidKubeconfigError, `the user uses ${message}`);
      const path = join(dir, `refused-${message}.kubeconfig`);
      await writeFile(path, text);
      expect(() => loadKubeconfigFile(path)).to.throw(InvalidKubeconfigError, `the user uses ${message}`);
    });
  }

  it('refuses in a DPUCluster\'s kubeconfig what client-node would read from the webhook\'s own disk or skip: files, a proxy, no verification', async function () {
    for (const [field, overrides] of [
      ['certificate-authority', { cluster: { 'certificate-authority': '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt' } }],
      ['token-file', { user: { ...tokenUser, token: undefined, 'token-file': '/var/run/secrets/kubernetes.io/serviceaccount/token' } }],
      ['client-certificate', { user: { 'client-certificate': '/etc/ssl/private/host.crt' } }],
      ['insecure-skip-tls-verify', { cluster: { 'insecure-skip-tls-verify': true } }],
      ['proxy-url', { cluster: { 'proxy-url': 'http://attacker.example:3128' } }],
    ] as const) {
      expect(() => loadKubeconfig(kubeconfig(overrides)), field).to.throw(InvalidKubeconfigError, `uses ${field}`);
    }
  });
});
