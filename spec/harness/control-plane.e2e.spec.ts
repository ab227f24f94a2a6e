import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ControlPlane, startControlPlane } from '../../harness/control-plane.js';
import { dpuClusterApi, installDpuClusterCrd, registerDpuCluster } from '../../harness/dpucluster.js';
import { apiErrorCode, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { createControlPlanePki } from '../../harness/pki.js';

// The first run may build the binaries; later starts take seconds.
const controlPlaneStartTimeoutMs = 20 * 60_000;

async function mintToken(plane: ControlPlane, namespace: string, name: string, expirationSeconds?: number) {
  const core = plane.adminKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } }).catch(() => undefined);
  return core.createNamespacedServiceAccountToken({
    namespace, name, body: { spec: { audiences: [], ...(expirationSeconds ? { expirationSeconds } : {}) } },
  });
}

describe('test control planes (real etcd + kube-apiserver on loopback)', function () {
  let host: ControlPlane;
  let target: ControlPlane;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    [host, target] = await Promise.all([startControlPlane({ name: 'host' }), startControlPlane({ name: 'target' })]);
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all([host?.stop(), target?.stop()]);
  });

  it('runs the pinned Kubernetes release, and says so on /version and --version (stamped at build)', async function () {
    const goMod = await readFile(new URL('../../hack/envtest/kube/go.mod', import.meta.url), 'utf8');
    const pinned = /^\s*k8s\.io\/kubernetes (v\S+)/m.exec(goMod)?.[1];
    expect(pinned).to.match(/^v1\.\d+\.\d+$/);
    const version = await host.adminKubeConfig().makeApiClient(VersionApi).getCode();
    expect(version).to.include({ gitVersion: pinned, major: '1', minor: pinned!.split('.')[1], gitTreeState: 'clean' });
    const { stdout } = await promisify(execFile)(join(dirname(host.kubectlPath), 'kube-apiserver'), ['--version']);
    expect(stdout.trim()).to.equal(`Kubernetes ${pinned}`);
  });

  it('gives each control plane its own CA', function () {
    expect(host.pki.caCertPem).to.not.equal(target.pki.caCertPem);
    expect(host.server).to.not.equal(target.server);
  });

  it('authenticates the admin kubeconfig as a member of system:masters', async function () {
    expect(await whoAmI(host.adminKubeConfig())).to.equal('admin');
  });

  it('mints a TokenRequest token that authenticates on its own cluster only', async function () {
    const minted = await mintToken(target, 'default', 'harness-sa');
    const token = minted.status!.token;
    expect(await whoAmI(tokenKubeConfig(target.server, target.pki.caCertPem, token)))
      .to.equal('system:serviceaccount:default:harness-sa');
    expect(await apiErrorCode(whoAmI(tokenKubeConfig(host.server, host.pki.caCertPem, token)))).to.equal(401);
  });

  it('gives a fresh service-account token no rights until RBAC grants them', async function () {
    const minted = await mintToken(target, 'default', 'no-rights-sa');
    const asServiceAccount = tokenKubeConfig(target.server, target.pki.caCertPem, minted.status!.token);
    expect(await apiErrorCode(asServiceAccount.makeApiClient(CoreV1Api).listNamespace())).to.equal(403);
  });

  it('refuses a TokenRequest shorter than 10 minutes', async function () {
    expect(await apiErrorCode(mintToken(target, 'default', 'short-sa', 599))).to.be.oneOf([400, 422]);
  });

  it('honours the requested lifetime when the server sets no maximum', async function () {
    const minted = await mintToken(target, 'default', 'long-sa', 24 * 3600);
    expect(minted.spec.expirationSeconds).to.equal(24 * 3600);
  });

  it('shortens a 24h TokenRequest to --service-account-max-token-expiration=1h', async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    const capped = await startControlPlane({ name: 'capped', maxTokenExpiration: '1h' });
    try {
      const minted = await mintToken(capped, 'default', 'capped-sa', 24 * 3600);
      expect(minted.spec.expirationSeconds).to.equal(3600);
      const lifetimeMs = new Date(minted.status!.expirationTimestamp).getTime() - Date.now();
      expect(lifetimeMs).to.be.within(3500_000, 3600_000);
    } finally {
      await capped.stop();
    }
  });

  it('keeps the cluster state across an API server restart on the same port', async function () {
    this.timeout(120_000);
    const core = () => target.adminKubeConfig().makeApiClient(CoreV1Api);
    await core().createNamespace({ body: { metadata: { name: 'survives-restart' } } });
    const server = target.server;
    await target.stopApiServer();
    const whileStopped = await core().readNamespace({ name: 'survives-restart' })
      .then(() => 'answered', (error: unknown) => (error instanceof ApiException ? `HTTP ${error.code}` : 'unreachable'));
    expect(whileStopped).to.equal('unreachable');
    await target.startApiServer();
    expect(target.server).to.equal(server);
    const namespace = await core().readNamespace({ name: 'survives-restart' });
    expect(namespace.metadata?.name).to.equal('survives-restart');
  });

  describe('as a DPUCluster of the host', function () {
    before(async function () {
      await installDpuClusterCrd(host.adminKubeConfig());
    });

    for (const kubeconfigKey of ['super-admin.conf', 'admin.conf'] as const) {
      it(`registers the target whose ${kubeconfigKey} Secret reaches the target as admin`, async function () {
        const hostConfig = host.adminKubeConfig();
        const name = kubeconfigKey === 'admin.conf' ? 'legacy-cplane' : 'dpu-cplane-tenant1';
        const cluster = await registerDpuCluster(hostConfig, target, { name, kubeconfigKey });
        const stored = await hostConfig.makeApiClient(CustomObjectsApi)
          .getNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name }) as { metadata: { uid: string } };
        expect(stored.metadata.uid).to.equal(cluster.uid);

        const secret = await hostConfig.makeApiClient(CoreV1Api)
          .readNamespacedSecret({ namespace: 'default', name: cluster.kubeconfigSecretName });
        const fromSecret = new KubeConfig();
        fromSecret.loadFromString(Buffer.from(secret.data![kubeconfigKey]!, 'base64').toString());
        expect(fromSecret.getCurrentCluster()?.server).to.equal(target.server);
        expect(await whoAmI(fromSecret)).to.equal('admin');
      });
    }
  });
});

describe('control-plane PKI', function () {
  it('names 127.0.0.1, ::1 and localhost in the serving certificate, and the extra IP addresses asked for', async function () {
    const subjectAltName = async (extraIpSans?: string[]) => {
      const dir = await mkdtemp(join(tmpdir(), 'pki-'));
      try {
        const pki = await createControlPlanePki(dir, 'sans', extraIpSans);
        return new X509Certificate(await readFile(pki.servingCertPath)).subjectAltName;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };
    expect(await subjectAltName()).to.equal('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost');
    expect(await subjectAltName(['127.0.0.2', '127.0.1.4'])).to.equal(
      'IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost, IP Address:127.0.0.2, IP Address:127.0.1.4');
  });
});
