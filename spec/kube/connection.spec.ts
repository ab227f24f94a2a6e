// The host cluster's connection, read the way client-node's loadFromDefault found it:
// KUBECONFIG (its first file), ~/.kube/config, the in-cluster ServiceAccount; no network.
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { stringify } from 'yaml';
import { fileToken, loadHostConnection, loadKubeconfigFile, tokenFileMaxAgeMs, type ClusterConnection } from '../../server/kube/connection.js';
import { InvalidKubeconfigError } from '../../server/kube/kubeconfig.js';

const caPem = '-----BEGIN CERTIFICATE-----\nMIIBY2E=\n-----END CERTIFICATE-----\n';
const certPem = '-----BEGIN CERTIFICATE-----\nMIIBY2VydA==\n-----END CERTIFICATE-----\n';
const keyPem = '-----BEGIN PRIVATE KEY-----\nMIIBa2V5\n-----END PRIVATE KEY-----\n';
const b64 = (text: string) => Buffer.from(text).toString('base64');

type Fields = Record<string, unknown>;

function kubeconfig(options: { cluster?: Fields; user?: Fields; extra?: Fields } = {}): string {
  return stringify({
    apiVersion: 'v1', kind: 'Config',
    clusters: [
      { name: 'other', cluster: { server: 'https://other.example:6443', 'certificate-authority-data': b64('other CA') } },
      { name: 'host', cluster: { server: 'https://host.example:6443/', 'certificate-authority-data': b64(caPem), ...options.cluster } },
    ],
    users: [
      { name: 'other', user: { token: 'other-token' } },
      { name: 'webhook', user: { 'client-certificate-data': b64(certPem), 'client-key-data': b64(keyPem), ...options.user } },
    ],
    contexts: [
      { name: 'other', context: { cluster: 'other', user: 'other' } },
      { name: 'webhook@host', context: { cluster: 'host', user: 'webhook' } },
    ],
    'current-context': 'webhook@host',
    ...options.extra,
  });
}

/** What a connection holds, with the token asked for once (a function does not compare). */
const view = ({ bearerToken, ...rest }: ClusterConnection) => ({ ...rest, ...(bearerToken ? { token: bearerToken() } : {}) });

describe('the host connection (connection.ts)', function () {
  let dir: string;
  beforeEach(async function () {
    dir = await mkdtemp(join(tmpdir(), 'connection-'));
  });
  afterEach(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  const write = async (name: string, text: string) => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  const problem = (load: () => unknown) => {
    try {
      load();
    } catch (error) {
      expect(error).to.be.instanceOf(InvalidKubeconfigError);
      return (error as Error).message;
    }
    return 'accepted';
  };

  describe('a kubeconfig file', function () {
    it('uses the current context\'s cluster and user, with inline CA and client certificate', async function () {
      const path = await write('config', kubeconfig());
      expect(view(loadKubeconfigFile(path))).to.deep.equal({ server: 'https://host.example:6443', caPem, clientCertPem: certPem, clientKeyPem: keyPem });
    });

    it('reads files a trusted kubeconfig names, relative ones from its own folder', async function () {
      await mkdir(join(dir, 'pki'));
      await write('pki/ca.crt', caPem);
      await write('pki/client.crt', certPem);
      const keyPath = await write('pki/client.key', keyPem);
      const path = await write('config', kubeconfig({
        cluster: { 'certificate-authority-data': undefined, 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'kubernetes' },
        user: { 'client-certificate-data': undefined, 'client-key-data': undefined, 'client-certificate': 'pki/client.crt', 'client-key': keyPath },
      }));
      expect(view(loadKubeconfigFile(path))).to.deep.equal({
        server: 'https://host.example:6443', caPem, tlsServerName: 'kubernetes', clientCertPem: certPem, clientKeyPem: keyPem,
      });
    });

    it('sends an inline token', async function () {
      const path = await write('config', kubeconfig({ user: { 'client-certificate-data': undefined, 'client-key-data': undefined, token: 'inline-token' } }));
      expect(view(loadKubeconfigFile(path))).to.deep.equal({ server: 'https://host.example:6443', caPem, token: 'inline-token' });
    });

    it('reads a token-file, and reads it again once it is a minute old', async function () {
      const tokenPath = await write('token', 'first\n');
      const path = await write('config', kubeconfig({ user: { 'client-certificate-data': undefined, 'client-key-data': undefined, 'token-file': 'token' } }));
      let now = 0;
      const connection = loadKubeconfigFile(path, () => now);
      expect(connection.bearerToken?.()).to.equal('first');
      await writeFile(tokenPath, 'second');
      now = tokenFileMaxAgeMs;
      expect(connection.bearerToken?.()).to.equal('second');
    });

    it('honours insecure-skip-tls-verify in the operator\'s own kubeconfig', async function () {
      const path = await write('config', kubeconfig({ cluster: { 'certificate-authority-data': undefined, 'insecure-skip-tls-verify': true } }));
      expect(view(loadKubeconfigFile(path))).to.deep.equal({ server: 'https://host.example:6443', insecureSkipTlsVerify: true, clientCertPem: certPem, clientKeyPem: keyPem });
    });

    for (const [what, user, message] of [
      ['an exec plugin', { exec: { command: 'aws', args: ['eks', 'get-token'] } }, 'the user uses exec: exec credential plugins are not supported: use a token, a token-file or a client certificate'],
      ['an auth provider', { 'auth-provider': { name: 'oidc', config: {} } }, 'the user uses auth-provider: auth providers are not supported: use a token, a token-file or a client certificate'],
      ['basic authentication', { username: 'admin', password: 'secret' }, 'the user uses username: basic authentication is not supported (Kubernetes removed it in 1.19)'],
    ] as const) {
      it(`refuses ${what}, saying so`, async function () {
        const path = await write('config', kubeconfig({ user }));
        expect(problem(() => loadKubeconfigFile(path))).to.equal(`the kubeconfig ${path}: ${message}`);
      });
    }

    it('refuses a proxy, a certificate without its key, a missing file and an undefined current context', async function () {
      expect(problem(() => loadKubeconfigFile(join(dir, 'missing')))).to.contain('cannot read the kubeconfig');
      const proxy = await write('proxy', kubeconfig({ cluster: { 'proxy-url': 'http://proxy:3128' } }));
      expect(problem(() => loadKubeconfigFile(proxy))).to.contain('proxy-url');
      const halfCertificate = await write('half', kubeconfig({ user: { 'client-key-data': undefined } }));
      expect(problem(() => loadKubeconfigFile(halfCertificate))).to.contain('without its key');
      const missingCa = await write('missing-ca', kubeconfig({ cluster: { 'certificate-authority-data': undefined, 'certificate-authority': 'nowhere.crt' } }));
      expect(problem(() => loadKubeconfigFile(missingCa))).to.contain(`cannot read certificate-authority ${join(dir, 'nowhere.crt')}: ENOENT`);
      const undefinedContext = await write('context', kubeconfig({ extra: { 'current-context': 'gone' } }));
      expect(problem(() => loadKubeconfigFile(undefinedContext))).to.contain('the current context "gone" is not defined');
    });

    it('never puts a token or key into its error messages', async function () {
      const path = await write('config', kubeconfig({ cluster: { server: 'not a url' }, user: { token: 'secret-token' } }));
      const message = problem(() => loadKubeconfigFile(path));
      expect(message).to.contain('not an http(s) URL');
      expect(message).not.to.contain('secret-token');
      expect(message).not.to.contain('PRIVATE KEY');
    });
  });

  describe('where it is found (loadFromDefault\'s order)', function () {
    const serviceAccount = async () => {
      await mkdir(join(dir, 'sa'));
      await write('sa/token', 'pod-token');
      await write('sa/ca.crt', caPem);
      return join(dir, 'sa');
    };

    it('KUBECONFIG first, and of a list its first file', async function () {
      const first = await write('first', kubeconfig({ user: { token: 'first-token', 'client-certificate-data': undefined, 'client-key-data': undefined } }));
      const second = await write('second', kubeconfig({ user: { token: 'second-token', 'client-certificate-data': undefined, 'client-key-data': undefined } }));
      await mkdir(join(dir, 'home', '.kube'), { recursive: true });
      await write('home/.kube/config', kubeconfig({ cluster: { server: 'https://home.example' } }));
      const found = loadHostConnection({ env: { KUBECONFIG: `${delimiter}${first}${delimiter}${second}` }, home: join(dir, 'home'), serviceAccountDir: await serviceAccount() });
      expect(found.inCluster).to.equal(false);
      expect(view(found.connection)).to.include({ token: 'first-token' });
    });

    it('~/.kube/config when KUBECONFIG is unset or empty, before the in-cluster configuration', async function () {
      await mkdir(join(dir, 'home', '.kube'), { recursive: true });
      await write('home/.kube/config', kubeconfig({ cluster: { server: 'https://home.example' } }));
      const found = loadHostConnection({ env: { KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, home: join(dir, 'home'), serviceAccountDir: await serviceAccount() });
      expect(found.inCluster).to.equal(false);
      expect(found.connection.server).to.equal('https://home.example');
    });

    it('in a Pod: the kubernetes Service, the mounted CA, and the mounted token read again as the kubelet rotates it', async function () {
      const accountDir = await serviceAccount();
      let now = 1_000;
      const found = loadHostConnection({
        env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, home: join(dir, 'nohome'), serviceAccountDir: accountDir, now: () => now,
      });
      expect(found.inCluster).to.equal(true);
      expect(view(found.connection)).to.deep.equal({ server: 'https://[fd00::1]:443', caPem, token: 'pod-token' });
      await writeFile(join(accountDir, 'token'), 'rotated-token');
      now += tokenFileMaxAgeMs - 1;
      expect(found.connection.bearerToken?.()).to.equal('pod-token');
      now += 1;
      expect(found.connection.bearerToken?.()).to.equal('rotated-token');
    });

    it('in a Pod without the Service\'s address, or with nothing at all: a clear error (no http://localhost:8080)', async function () {
      const accountDir = await serviceAccount();
      expect(problem(() => loadHostConnection({ env: {}, home: join(dir, 'nohome'), serviceAccountDir: accountDir }))).to.contain('KUBERNETES_SERVICE_HOST');
      expect(problem(() => loadHostConnection({ env: {}, home: join(dir, 'nohome'), serviceAccountDir: join(dir, 'nosa') }))).to.contain('no host cluster configuration');
    });
  });

  describe('fileToken', function () {
    it('keeps the last token when a re-read fails (the kubelet swaps the file by renaming)', async function () {
      const path = await write('token', 'kept');
      let now = 0;
      const token = fileToken(path, { now: () => now });
      await rm(path);
      now = tokenFileMaxAgeMs;
      expect(token()).to.equal('kept');
      await writeFile(path, 'back');
      now += tokenFileMaxAgeMs;
      expect(token()).to.equal('back');
    });
  });
});
