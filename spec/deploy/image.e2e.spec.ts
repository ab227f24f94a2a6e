// The image built from the Dockerfile as it is (scripts/image.sh: buildah, local stand-ins for
// the base images) and run with podman as the Deployment runs it: host network, read-only
// root filesystem, user 65532, no capabilities, the Deployment's env and Secret volumes, the
// host API server reached in-cluster with the webhook's ServiceAccount token; against real
// host and target API servers, called by the Metacontroller driver. Skipped, saying so, only
// where podman or buildah is missing and CI is not set; under CI their absence fails. The
// chart's bootstrap Job runs from the same image, as the Job's ServiceAccount.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { chartDir } from '../../scripts/render-deploy.js';
import { BootstrapJobRunner } from '../../harness/bootstrap-job.js';
import { helm } from '../../harness/helm.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { installDpuClusterCrd, registerDpuCluster } from '../../harness/dpucluster.js';
import { eventually } from '../../harness/eventually.js';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import {
  buildImage, inspectImage, missingImageTools, readableAsVolume, readDeploymentContainer, runWebhookContainer, writeServiceAccountFolder,
  type DeploymentContainer, type ImageSummary, type RunningContainer,
} from '../../harness/image.js';
import { condition, createObjects, readManifests } from '../../harness/kube-helpers.js';
import { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { freePort } from '../../harness/net.js';
import { logTail } from '../../harness/processes.js';
import { authenticatesAs, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, hookTokenSecretName, parentApi, requestCrdPath, serviceNetwork } from '../../harness/webhook-env.js';
import { webhookAccount, webhookKubeConfig } from '../../harness/webhook-identity.js';
import { WebhookInstall } from '../../harness/webhook-install.js';

/** The chart's release whose bootstrap Job the image runs. */
const bootstrapRelease = 'dpu-credential-webhook';

/** The first build debootstraps Debian and runs `npm ci`: minutes; later runs reuse the image. */
const imageBuildTimeoutMs = 30 * 60_000;

describe('the image built from the Dockerfile, run with podman as the Deployment runs it', function () {
  this.timeout(120_000);
  let dir: string;
  let image: string;
  let summary: ImageSummary;
  let deployment: DeploymentContainer;
  let host: ControlPlane;
  let target: ControlPlane;
  let install: WebhookInstall;
  let container: RunningContainer | undefined;
  let port: number;
  let driver: MetacontrollerDriver | undefined;
  let proxy: FaultProxy | undefined;

  const createRequest = (name: string, targetCluster: string) => host.adminKubeConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...parentApi, namespace: 'default',
    body: {
      apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
      spec: { serviceAccount: { name: `${name}-sa` }, targetCluster: { name: targetCluster }, type: 'kubeconfig', secret: { name } },
    },
  });
  const readRequest = async (name: string) => await host.adminKubeConfig().makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }) as DpuServiceCredentialRequest;

  before(async function () {
    const missing = await missingImageTools();
    if (missing.length > 0) {
      const message = `${missing.join(' and ')} not installed (apt-get install buildah podman runc debootstrap, or bash scripts/image.sh as root)`;
      if (process.env.CI) throw new Error(`CI is set and ${message}: the image test cannot run`);
      console.log(`    skipped: the image test needs ${message}`);
      this.skip();
    }
    this.timeout(imageBuildTimeoutMs + controlPlaneStartTimeoutMs);
    dir = await mkdtemp(join(tmpdir(), 'image-e2e-'));
    image = await buildImage(join(dir, 'build.log'));
    summary = await inspectImage(image);
    deployment = await readDeploymentContainer();

    [host, target] = await Promise.all([startControlPlane({ name: 'host' }), startControlPlane({ name: 'target' })]);
    const hostConfig = host.adminKubeConfig();
    await createObjects(hostConfig, await readManifests(requestCrdPath));
    await installDpuClusterCrd(hostConfig);
    await registerDpuCluster(hostConfig, target, { name: 'dpu-cplane-tenant1' });
    install = await WebhookInstall.create(hostConfig, dir, { hookTokenSecretName: await hookTokenSecretName() });
    // The webhook's ServiceAccount with the shipped ClusterRole (deploy/namespace.yaml, rbac.yaml), its token mounted as the kubelet does.
    const account = await webhookKubeConfig(host);
    const serviceAccountFolder = await writeServiceAccountFolder(join(dir, 'serviceaccount'), {
      token: account.getCurrentUser()!.token!, caPem: host.pki.caCertPem, namespace: webhookAccount.namespace,
    });
    await readableAsVolume(dir);

    port = await freePort();
    container = await runWebhookContainer({
      image, deployment, logPath: join(dir, 'webhook.log'),
      volumes: { 'hook-token': install.tokenVolume.dir, tls: install.tlsVolume.dir },
      inCluster: { host: '127.0.0.1', port: host.apiServerPort, serviceAccountFolder },
      // The host network is shared with whatever else runs here: free ports, not 8080 and 9090.
      env: { PORT: String(port), METRICS_PORT: String(await freePort()) },
    });
    const exitedEarly = container.exited.then(async (code) => {
      throw new Error(`the container exited (${code}) before it answered; its log:\n${await logTail(container!.logPath)}`);
    });
    // The Deployment's readiness probe: HTTPS on the hook port.
    await Promise.race([exitedEarly, eventually(async () => (await install.call(port, deployment.readinessPath).catch(() => ({ status: 0 }))).status === 200,
      `the container answers ${deployment.readinessPath} (its log: ${container.logPath})`, { timeoutMs: 60_000, intervalMs: 200 })]);
    exitedEarly.catch(() => undefined);
    driver = await MetacontrollerDriver.start({ host: hostConfig, network: await serviceNetwork(port) });
  });

  after(async function () {
    this.timeout(60_000);
    driver?.close();
    await container?.remove();
    await proxy?.close();
    await Promise.all([host?.stop(), target?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('holds the compiled server and its production dependencies only: no shell, no compiler, no dev dependencies, no tests, no TypeScript', function () {
    const { files } = summary;
    console.log(`    ${image}: ${(summary.size / 1e6).toFixed(1)} MB, ${files.length} paths, entrypoint ${JSON.stringify(summary.entrypoint)} ${JSON.stringify(summary.cmd)}, user ${summary.user}`);
    expect(files).to.include.members(['app/package.json', 'app/dist/server/main.js', 'app/node_modules/express/package.json', 'nodejs/bin/node']);
    expect(summary.entrypoint).to.deep.equal(['/nodejs/bin/node']);
    expect(summary.cmd).to.deep.equal(['--enable-source-maps', 'dist/server/main.js']);
    expect(summary.user).to.equal('65532:65532');
    const forbidden = [
      // a shell, a package manager, a compiler
      /^(usr\/)?bin\/(sh|bash|dash|apt|dpkg|gcc|cc|make)$/, /^usr\/bin\/(apt-get|g\+\+)$/,
      // npm itself, and the build's dev dependencies
      /(^|\/)node_modules\/npm(\/|$)/, /^app\/node_modules\/(mocha|typescript|tsx|esbuild|chai|@kubernetes\/client-node|supertest|autocannon|fast-check)(\/|$)/,
      /^app\/node_modules\/@types\/./,
      // the tests, their harness, and the sources
      /^app\/(spec|harness|bench|scripts|server|hack|examples)(\/|$)/, /^app\/.*\.ts$/,
    ];
    expect(files.filter((file) => /^(usr\/)?s?bin\/./.test(file)), 'programs in bin/ and sbin/').to.deep.equal([]);
    const found = files.filter((file) => !file.endsWith('.d.ts') && forbidden.some((pattern) => pattern.test(file)));
    expect(found, 'paths the image should not hold').to.deep.equal([]);
  });

  it('serves as the webhook: a request becomes Ready, its Secret authenticates as its ServiceAccount', async function () {
    await createRequest('from-image', 'dpu-cplane-tenant1');
    await driver!.reconcile('default', 'from-image');
    expect(condition(await readRequest('from-image'), 'Ready')).to.include({ status: 'True' });
    expect(await authenticatesAs((await readSecret(host.adminKubeConfig(), 'from-image'))!)).to.equal('system:serviceaccount:default:from-image-sa');
  });

  it('runs the chart\'s bootstrap Job: from the image, as the Job\'s ServiceAccount, it makes the token, the CA and a serving certificate for the host Metacontroller calls', async function () {
    const namespace = 'image-bootstrap';
    const rendered = await helm(['template', bootstrapRelease, chartDir, '--namespace', namespace,
      '--show-only', 'templates/bootstrap/rbac.yaml', '--show-only', 'templates/bootstrap/job.yaml'], { home: join(dir, 'helm') });
    const objects = parseAllDocuments(rendered).map((document) => document.toJS() as KubernetesObject | null)
      .filter((object): object is KubernetesObject => object !== null);
    await createObjects(host.adminKubeConfig(), [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, ...objects]);
    const jobs = await BootstrapJobRunner.start(host, namespace, dir, { poll: false, image });
    try {
      const [bootstrap] = await jobs.runPending();
      expect({ user: bootstrap?.user, exitCode: bootstrap?.exitCode }, bootstrap?.log).to.deep.equal({
        user: `system:serviceaccount:${namespace}:${bootstrapRelease}-bootstrap`, exitCode: 0,
      });
    } finally {
      await jobs.stop();
    }
    const secret = async (name: string) => (await readSecret(host.adminKubeConfig(), name, namespace))!.data!;
    expect(Object.keys(await secret(`${bootstrapRelease}-hook-token`))).to.deep.equal(['token']);
    const ca = new X509Certificate(Buffer.from((await secret(`${bootstrapRelease}-ca`))['ca.crt']!, 'base64'));
    const serving = new X509Certificate(Buffer.from((await secret(`${bootstrapRelease}-tls`))['tls.crt']!, 'base64'));
    expect(serving.verify(ca.publicKey), 'the serving certificate is signed by the CA').to.equal(true);
    // {service}.{namespace} without .svc: the name Metacontroller builds and checks.
    expect(serving.checkHost(`${bootstrapRelease}.${namespace}`)).to.equal(`${bootstrapRelease}.${namespace}`);
  });

  it('drains on SIGTERM: a hook in flight completes and the container exits 0 within the grace period', async function () {
    this.timeout(120_000);
    proxy = await startFaultProxy(target);
    const hostConfig = host.adminKubeConfig();
    await registerDpuCluster(hostConfig, target, { name: 'held-cluster', kubeconfigYaml: proxy.kubeconfigYaml() });
    await createRequest('in-flight', 'held-cluster');
    // The hook is in flight while its TokenRequest is held at the proxy.
    const minting = proxy.arrival('POST', /\/token$/, { hold: true });
    let answered = false;
    const inFlight = driver!.syncOnce('default', 'in-flight').finally(() => {
      answered = true;
    });
    const mint = await minting;
    // As the kubelet stops it: SIGTERM, then SIGKILL once terminationGracePeriodSeconds are over.
    // (In a Pod the preStop sleep runs first, within the same period: this is the stricter case.)
    const stopping = container!.stop(deployment.terminationGracePeriodSeconds);
    const afterSigterm = () => install.call(port, '/healthz').then(() => 'answered', (error: NodeJS.ErrnoException) => error.code);
    await eventually(async () => await afterSigterm() === 'ECONNREFUSED', 'the webhook refuses new connections after SIGTERM');
    expect(answered, 'the hook answered before its TokenRequest did').to.equal(false);
    mint.release();

    const { response } = await inFlight;
    expect(response.children).to.have.length(1);
    expect(await identityOn(target, tokenIn((await readSecret(hostConfig, 'in-flight'))!))).to.equal('system:serviceaccount:default:in-flight-sa');
    await stopping;
    // 0: the process ended by itself; a SIGKILL at the end of the grace period would give 137.
    expect(await container!.exited, `the container's exit code (its log: ${container!.logPath})`).to.equal(0);
  });
});
