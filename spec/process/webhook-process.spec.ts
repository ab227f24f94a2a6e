// The webhook as it runs in production: its own process, configured by environment,
// serving HTTPS with a bearer token, logging at the most verbose level; against real
// host and target API servers.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startControlPlane, type ControlPlane } from '../support/control-plane.js';
import { installDpuClusterCrd, registerDpuCluster } from '../support/dpucluster.js';
import { createObjects, readManifests } from '../support/kube-helpers.js';
import { MetacontrollerDriver } from '../support/metacontroller-driver.js';
import { createControlPlanePki, type ControlPlanePki } from '../support/pki.js';
import { startProcess, type ManagedProcess } from '../support/processes.js';
import { authenticatesAs, readSecret, tokenIn } from '../support/secrets.js';
import { startSlowProxy, type SlowProxy } from '../support/slow-proxy.js';
import { freePort } from '../support/net.js';
import { controlPlaneStartTimeoutMs, requestCrdPath } from '../support/webhook-env.js';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { parentApi } from '../support/metacontroller-driver.js';

const mainPath = fileURLToPath(new URL('../../server/main.ts', import.meta.url));

function get(url: string, options: { ca?: string; token?: string; method?: string; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    if (options.body) headers['Content-Type'] = 'application/json';
    const req = httpsRequest(url, { method: options.method ?? 'GET', headers, ca: options.ca, timeout: 5_000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('the webhook process (HTTPS, bearer token, debug logs, shutdown)', function () {
  let host: ControlPlane;
  let target: ControlPlane;
  let dir: string;
  let webhookPki: ControlPlanePki;
  let hookToken: string;
  let webhook: ManagedProcess;
  let url: string;
  let driver: MetacontrollerDriver;
  let proxy: SlowProxy | undefined;
  const mintedTokens: string[] = [];

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    [host, target] = await Promise.all([startControlPlane({ name: 'host' }), startControlPlane({ name: 'target' })]);
    const hostConfig = host.adminKubeConfig();
    await createObjects(hostConfig, await readManifests(requestCrdPath));
    await installDpuClusterCrd(hostConfig);
    await registerDpuCluster(hostConfig, target, { name: 'dpu-cplane-tenant1' });

    dir = await mkdtemp(join(tmpdir(), 'webhook-process-'));
    webhookPki = await createControlPlanePki(dir, 'webhook');
    hookToken = randomBytes(24).toString('hex');
    await writeFile(join(dir, 'hook-token'), `${hookToken}\n`);
    await copyFile(webhookPki.servingCertPath, join(dir, 'tls.crt'));
    await copyFile(webhookPki.servingKeyPath, join(dir, 'tls.key'));

    const port = await freePort();
    url = `https://127.0.0.1:${port}`;
    webhook = await startProcess(process.execPath, ['--import', 'tsx', mainPath], join(dir, 'webhook.log'), {
      ...process.env,
      KUBECONFIG: await host.writeAdminKubeconfig(),
      PORT: String(port),
      LOG_LEVEL: 'debug',
      HOOK_BEARER_TOKEN_FILE: join(dir, 'hook-token'),
      TLS_CERT_FILE: join(dir, 'tls.crt'),
      TLS_KEY_FILE: join(dir, 'tls.key'),
      FILE_POLL_INTERVAL_MS: '100',
    });
    for (let attempt = 0; ; attempt++) {
      const answer = await get(`${url}/healthz`, { ca: webhookPki.caCertPem }).catch(() => undefined);
      if (answer?.status === 200) break;
      if (attempt > 300) throw new Error(`the webhook did not start:\n${await readFile(join(dir, 'webhook.log'), 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    driver = new MetacontrollerDriver(hostConfig, url, { caPem: webhookPki.caCertPem, bearerToken: hookToken });
  });

  after(async function () {
    this.timeout(60_000);
    await webhook?.stop();
    await proxy?.close();
    await Promise.all([host?.stop(), target?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers hook calls without the bearer token, or with a wrong one, with 401', async function () {
    const body = JSON.stringify({ parent: { metadata: { name: 'x', namespace: 'default' } } });
    expect((await get(`${url}/customize`, { ca: webhookPki.caCertPem, method: 'POST', body })).status).to.equal(401);
    expect((await get(`${url}/customize`, { ca: webhookPki.caCertPem, method: 'POST', body, token: 'wrong' })).status).to.equal(401);
    expect((await get(`${url}/customize`, { ca: webhookPki.caCertPem, method: 'POST', body, token: hookToken })).status).to.equal(200);
  });

  it('reports ready when the host cluster answers', async function () {
    expect(await get(`${url}/readyz`, { ca: webhookPki.caCertPem })).to.deep.include({ status: 200 });
  });

  for (const type of ['kubeconfig', 'tokenFile'] as const) {
    it(`mints a working ${type} Secret over HTTPS with the bearer token`, async function () {
      const name = `process-${type.toLowerCase()}`;
      await host.adminKubeConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
        ...parentApi, namespace: 'default',
        body: {
          apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
          spec: { serviceAccount: { name: `${name}-sa` }, targetCluster: { name: 'dpu-cplane-tenant1' }, type, secret: { name } },
        },
      });
      await driver.reconcile('default', name);
      const secret = await readSecret(host.adminKubeConfig(), name);
      mintedTokens.push(tokenIn(secret!));
      expect(await authenticatesAs(secret!)).to.equal(`system:serviceaccount:default:${name}-sa`);
    });
  }

  it('writes no token, CA or key into any log line at the debug level', async function () {
    // Failing paths log too: an invalid body, a bad token, an invalid spec.
    await get(`${url}/sync`, { ca: webhookPki.caCertPem, method: 'POST', body: '{"parent":', token: hookToken });
    await get(`${url}/sync`, { ca: webhookPki.caCertPem, method: 'POST', body: '{}', token: mintedTokens[0] });
    const log = await readFile(webhook.logPath, 'utf8');
    expect(mintedTokens).to.have.length(2);
    expect(log).to.contain('"decision":"minted"');
    const secrets = [
      ...mintedTokens, ...mintedTokens.map((token) => Buffer.from(token).toString('base64')),
      hookToken,
      target.pki.caCertPem.split('\n')[1]!, Buffer.from(target.pki.caCertPem).toString('base64').slice(0, 40),
      target.pki.adminKeyPem.split('\n')[1]!, host.pki.adminKeyPem.split('\n')[1]!,
      'BEGIN CERTIFICATE', 'PRIVATE KEY',
    ];
    for (const secret of secrets) expect(log.includes(secret), `the log contains ${secret.slice(0, 12)}…`).to.equal(false);
  });

  it('serves a rotated certificate without a restart', async function () {
    this.timeout(30_000);
    const rotated = await createControlPlanePki(await mkdtemp(join(dir, 'rotated-')), 'webhook-rotated');
    await copyFile(rotated.servingKeyPath, join(dir, 'tls.key'));
    await copyFile(rotated.servingCertPath, join(dir, 'tls.crt'));
    for (let attempt = 0; ; attempt++) {
      const answer = await get(`${url}/healthz`, { ca: rotated.caCertPem }).catch(() => undefined);
      if (answer?.status === 200) break;
      if (attempt > 100) expect.fail('the rotated certificate was not served within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const withOldCa = await get(`${url}/healthz`, { ca: webhookPki.caCertPem }).then(() => 'trusted', (error: Error) => error.message);
    expect(withOldCa).to.not.equal('trusted');
    driver = new MetacontrollerDriver(host.adminKubeConfig(), url, { caPem: rotated.caCertPem, bearerToken: hookToken });
  });

  it('finishes a hook in flight on SIGTERM, refuses new connections, and exits 0', async function () {
    this.timeout(60_000);
    proxy = await startSlowProxy(target.apiServerPort, 1_500);
    const hostConfig = host.adminKubeConfig();
    const slowKubeconfig = target.adminKubeconfigYaml().replace(target.server, proxy.url);
    await registerDpuCluster(hostConfig, target, { name: 'slow-cluster', kubeconfigYaml: slowKubeconfig });
    await hostConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...parentApi, namespace: 'default',
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: 'in-flight' },
        spec: { serviceAccount: { name: 'in-flight-sa' }, targetCluster: { name: 'slow-cluster' }, type: 'kubeconfig', secret: { name: 'in-flight' } },
      },
    });
    const inFlight = driver.reconcile('default', 'in-flight');
    await new Promise((resolve) => setTimeout(resolve, 600));
    process.kill(webhook.pid, 'SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const afterSigterm = await get(`${url}/healthz`, { ca: webhookPki.caCertPem }).then(() => 'answered', (error: NodeJS.ErrnoException) => error.code);
    expect(afterSigterm).to.equal('ECONNREFUSED');

    const { response } = await inFlight;
    expect(response.children).to.have.length(1);
    expect(await authenticatesAs((await readSecret(hostConfig, 'in-flight'))!)).to.equal('system:serviceaccount:default:in-flight-sa');
    expect(await webhook.exited).to.equal(0);
  });
});
