// The webhook as it runs in production: its own process, configured by environment,
// serving HTTPS with the shipped certificate layout and the hook token, logging at the
// most verbose level; against real host and target API servers, called by the
// Metacontroller driver through the Service name Metacontroller uses.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { installDpuClusterCrd, registerDpuCluster } from '../../harness/dpucluster.js';
import { eventually } from '../../harness/eventually.js';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { createObjects, readManifests } from '../../harness/kube-helpers.js';
import { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { authenticatesAs, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, hookTokenSecretName, parentApi, requestCrdPath, serviceNetwork } from '../../harness/webhook-env.js';
import { WebhookInstall } from '../../harness/webhook-install.js';
import { startWebhookProcess, type WebhookProcess } from '../../harness/webhook-process.js';

describe('the webhook process (HTTPS, bearer token, debug logs, shutdown)', function () {
  let host: ControlPlane;
  let target: ControlPlane;
  let dir: string;
  let install: WebhookInstall;
  let webhook: WebhookProcess;
  let driver: MetacontrollerDriver;
  let proxy: FaultProxy | undefined;
  const mintedTokens: string[] = [];
  const call = (path: string, options: { method?: string; body?: string; token?: string | null } = {}) => install.call(webhook.port, path, options);

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    [host, target] = await Promise.all([startControlPlane({ name: 'host' }), startControlPlane({ name: 'target' })]);
    const hostConfig = host.adminKubeConfig();
    await createObjects(hostConfig, await readManifests(requestCrdPath));
    await installDpuClusterCrd(hostConfig);
    await registerDpuCluster(hostConfig, target, { name: 'dpu-cplane-tenant1' });

    dir = await mkdtemp(join(tmpdir(), 'webhook-process-'));
    install = await WebhookInstall.create(hostConfig, dir, { hookTokenSecretName: await hookTokenSecretName() });
    webhook = await startWebhookProcess(install, await host.writeAdminKubeconfig(), join(dir, 'webhook.log'),
      { LOG_LEVEL: 'debug', FILE_POLL_INTERVAL_MS: '100' });
    driver = await MetacontrollerDriver.start({ host: hostConfig, network: await serviceNetwork(webhook.port) });
  });

  after(async function () {
    this.timeout(60_000);
    driver?.close();
    await webhook?.stop();
    await proxy?.close();
    await Promise.all([host?.stop(), target?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers hook calls without the bearer token, or with a wrong one, with 401', async function () {
    const body = JSON.stringify({ parent: { metadata: { name: 'x', namespace: 'default' } } });
    expect((await call('/customize', { method: 'POST', body, token: null })).status).to.equal(401);
    expect((await call('/customize', { method: 'POST', body, token: 'wrong' })).status).to.equal(401);
    expect((await call('/customize', { method: 'POST', body })).status).to.equal(200);
  });

  it('reports ready when the host cluster answers', async function () {
    expect(await call('/readyz')).to.deep.include({ status: 200 });
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

  it('serves /metrics on METRICS_PORT over plain HTTP, counting the mints, and not on the hook port', async function () {
    const scrape = await fetch(webhook.metricsUrl);
    expect(scrape.status).to.equal(200);
    expect(await scrape.text()).to.match(/dpu_credential_tokens_minted_total [1-9]/);
    expect((await call('/metrics')).status).to.equal(404);
  });

  it('writes no token, CA or key into any log line at the debug level', async function () {
    // Failing paths log too: an invalid body, a bad token, an invalid spec.
    await call('/sync', { method: 'POST', body: '{"parent":' });
    await call('/sync', { method: 'POST', body: '{}', token: mintedTokens[0]! });
    const log = await readFile(webhook.logPath, 'utf8');
    expect(mintedTokens).to.have.length(2);
    expect(log).to.contain('"decision":"minted"');
    const secrets = [
      ...mintedTokens, ...mintedTokens.map((token) => Buffer.from(token).toString('base64')),
      install.hookToken,
      target.pki.caCertPem.split('\n')[1]!, Buffer.from(target.pki.caCertPem).toString('base64').slice(0, 40),
      target.pki.adminKeyPem.split('\n')[1]!, host.pki.adminKeyPem.split('\n')[1]!,
      'BEGIN CERTIFICATE', 'PRIVATE KEY',
    ];
    for (const secret of secrets) expect(log.includes(secret), `the log contains ${secret.slice(0, 12)}…`).to.equal(false);
  });

  it('serves a renewed certificate without a restart, trusted by Metacontroller through the unchanged CA', async function () {
    this.timeout(30_000);
    const before = (await call('/healthz')).serial;
    await install.setServingCertificate(await install.pki.issue('renewed', install.certificates.dnsNames));
    await eventually(async () => (await call('/healthz')).serial !== before, 'the renewed certificate is served', { intervalMs: 100 });
    // The driver read caBundle (the CA's ca.crt) at its start: the renewal needs nothing from it.
    await driver.reconcile('default', 'process-kubeconfig');
    expect(driver.calls.at(-1)).to.include({ hook: 'sync', statusCode: 200 });
  });

  it('finishes a hook in flight on SIGTERM, refuses new connections, and exits 0', async function () {
    this.timeout(60_000);
    proxy = await startFaultProxy(target);
    const hostConfig = host.adminKubeConfig();
    await registerDpuCluster(hostConfig, target, { name: 'held-cluster', kubeconfigYaml: proxy.kubeconfigYaml() });
    await hostConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...parentApi, namespace: 'default',
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: 'in-flight' },
        spec: { serviceAccount: { name: 'in-flight-sa' }, targetCluster: { name: 'held-cluster' }, type: 'kubeconfig', secret: { name: 'in-flight' } },
      },
    });
    // The hook is in flight while its TokenRequest is held at the proxy.
    const minting = proxy.arrival('POST', /\/token$/, { hold: true });
    let answered = false;
    const inFlight = driver.syncOnce('default', 'in-flight').finally(() => {
      answered = true;
    });
    const mint = await minting;
    process.kill(webhook.pid, 'SIGTERM');
    const afterSigterm = () => call('/healthz').then(() => 'answered', (error: NodeJS.ErrnoException) => error.code);
    await eventually(async () => await afterSigterm() === 'ECONNREFUSED', 'the webhook refuses new connections after SIGTERM');
    expect(await afterSigterm()).to.equal('ECONNREFUSED');
    expect(answered, 'the hook answered before its TokenRequest did').to.equal(false);
    mint.release();

    const { response } = await inFlight;
    expect(response.children).to.have.length(1);
    // On the target itself: the proxy in the Secret's kubeconfig calls as its admin.
    expect(await identityOn(target, tokenIn((await readSecret(hostConfig, 'in-flight'))!))).to.equal('system:serviceaccount:default:in-flight-sa');
    expect(await webhook.exited).to.equal(0);
  });
});
