// The Helm chart installed, upgraded and uninstalled by a real helm against a real API server,
// with the README's install block: the webhook, run as the tests run it with the Secrets the
// chart's bootstrap Job made, serves the Metacontroller driver reading the CompositeController
// the chart installed; an upgrade keeps the hook token and the CA byte for byte; uninstall
// leaves what docs/install.md says. Pods do not run here (no kubelet): nothing waits for them,
// but helm waits for its hook Job, which BootstrapJobRunner runs (harness/bootstrap-job.ts).
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { KubeApiError, KubeRestClient } from '../../server/kube/rest.js';
import { repoRoot } from '../../scripts/render-deploy.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { helm } from '../../harness/helm.js';
import { condition, createObjects } from '../../harness/kube-helpers.js';
import { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { metacontrollerKubeConfig } from '../../harness/metacontroller-identity.js';
import type { CompositeController } from '../../harness/metacontroller/controller-spec.js';
import { authenticatesAs, readSecret } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, parentApi } from '../../harness/webhook-env.js';
import { WebhookInstall } from '../../harness/webhook-install.js';
import { startWebhookProcess, type WebhookProcess } from '../../harness/webhook-process.js';
import { webhookTokenKubeConfig } from '../../harness/webhook-identity.js';
import { eventually } from '../../harness/eventually.js';
import { connectionOf } from '../../harness/connection.js';
import { compositeControllerCrd } from '../../harness/composite-controller-crd.js';
import { BootstrapJobRunner } from '../../harness/bootstrap-job.js';

const run = promisify(execFile);
const namespace = 'dpu-credential-webhook';
const release = 'dpu-credential-webhook';
const controllerPath = '/apis/metacontroller.k8s.io/v1alpha1/compositecontrollers/dpuservicecredentialrequest-controller';

/**
 * What `kubectl apply -k install/metacontroller/` applies, with its remote base (Metacontroller's production
 * manifests, not fetched here) replaced by a stand-in: the namespace, the CompositeController kind and a
 * StatefulSet shaped like upstream's, under the shipped patch. Returns the folder to apply instead.
 */
async function metacontrollerStandIn(dir: string): Promise<string> {
  const standIn = join(dir, 'metacontroller-stand-in');
  await mkdir(standIn, { recursive: true });
  const shipped = parse(await readFile(join(repoRoot, 'install/metacontroller/kustomization.yaml'), 'utf8')) as { resources: string[] };
  const statefulSet = {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'metacontroller', namespace: 'metacontroller' },
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/name': 'metacontroller' } }, serviceName: '',
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'metacontroller' } },
        spec: { containers: [{ name: 'metacontroller', image: 'ghcr.io/metacontroller/metacontroller:v4.17.2', args: ['--zap-log-level=4', '--discovery-interval=20s'] }] },
      },
    },
  };
  const upstream = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'metacontroller' } }, compositeControllerCrd, statefulSet];
  await writeFile(join(standIn, 'upstream.yaml'), upstream.map((object) => stringify(object)).join('---\n'));
  await writeFile(join(standIn, 'kustomization.yaml'), stringify({ ...shipped, resources: ['upstream.yaml'] }));
  return standIn;
}

/** The README's install block ("one `helm install` is the whole install"), one command a line, without docker. */
async function readmeInstallCommands(): Promise<string[][]> {
  return commandsOf(await readmeBlock('helm install'));
}

/** The README's block that holds `marker`. */
async function readmeBlock(marker: string): Promise<string> {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
  const block = blocks.find((text) => text.includes(marker));
  if (!block) throw new Error(`README.md has no block with ${marker}`);
  return block;
}

function commandsOf(block: string): string[][] {
  return block.replace(/\\\n\s*/g, ' ').split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('docker '))
    .map((line) => line.split(/\s+/));
}

/**
 * A kubeconfig file for the webhook process, as its ServiceAccount (the chart's ClusterRole): the policies
 * webhook-identity.yaml and managed-labels.yaml key on that username, and managed-labels.yaml refuses
 * anyone else, the admin too, the token anchors a host-cluster request needs.
 */
async function webhookKubeconfigFile(plane: ControlPlane, dir: string): Promise<string> {
  const path = join(dir, 'webhook.kubeconfig');
  await writeFile(path, (await webhookTokenKubeConfig(plane)).exportConfig(), { mode: 0o600 });
  return path;
}

describe('the Helm chart installed, upgraded and uninstalled (README install block)', function () {
  this.timeout(120_000);
  let plane: ControlPlane;
  let dir: string;
  let kubeconfig: string;
  let client: KubeRestClient;
  let install: WebhookInstall;
  let webhook: WebhookProcess | undefined;
  let driver: MetacontrollerDriver | undefined;
  let commands: string[][];
  let jobs: BootstrapJobRunner;

  const helmAt = (args: string[]) => helm(args, { home: join(dir, 'helm'), kubeconfig, cwd: repoRoot });
  const get = <T>(path: string) => client.request<T>('GET', path);
  const status = (path: string) => get(path).then(() => 200, (error: unknown) => error instanceof KubeApiError ? error.statusCode : Promise.reject(error));
  const secretData = async (name: string) => (await get<{ data: Record<string, string> }>(`/api/v1/namespaces/${namespace}/secrets/${name}`)).data;
  const chartSecrets = async () => ({
    token: await secretData(`${release}-hook-token`), ca: await secretData(`${release}-ca`), tls: await secretData(`${release}-tls`),
  });
  const requests = () => plane.adminKubeConfig().makeApiClient(CustomObjectsApi);
  const createRequest = (name: string) => requests().createNamespacedCustomObject({
    ...parentApi, namespace: 'default',
    body: {
      apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
      spec: { serviceAccount: { name: `${name}-sa` }, type: 'kubeconfig', secret: { name } },
    },
  });
  const readRequest = async (name: string) =>
    await requests().getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }) as DpuServiceCredentialRequest;

  /** Metacontroller started (or restarted) on the CompositeController the chart installed. */
  const startDriver = async () => {
    driver?.close();
    const path = join(dir, 'compositecontroller.yaml');
    await writeFile(path, stringify(await get<CompositeController>(controllerPath)));
    const service = (await get<CompositeController>(controllerPath)).spec.hooks.sync!.webhook.service!;
    // As Metacontroller's ServiceAccount: the chart's policies let no one else write a request's
    // status or a Secret's controller-uid label (the values' metacontroller.* name it).
    driver = await MetacontrollerDriver.start({
      host: await metacontrollerKubeConfig(plane), controllerPath: path,
      network: { [`${service.name}.${service.namespace}:${service.port}`]: { host: '127.0.0.1', port: webhook!.port } },
    });
    return driver;
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'chart' });
    dir = await mkdtemp(join(tmpdir(), 'chart-install-'));
    kubeconfig = await plane.writeAdminKubeconfig();
    client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
    jobs = await BootstrapJobRunner.start(plane, namespace, dir);
    commands = await readmeInstallCommands();
    const kubectl = (args: string[]) => run(plane.kubectlPath, args, { cwd: repoRoot, env: { ...process.env, KUBECONFIG: kubeconfig } });
    for (const [program, ...args] of commands) {
      if (program === 'helm') await helmAt(args);
      else if (program === 'kubectl' && args.join(' ') === 'apply -k install/metacontroller/') await kubectl(['apply', '-k', await metacontrollerStandIn(dir)]);
      else if (program === 'kubectl') await kubectl(args);
      else throw new Error(`the README's install block runs ${program}: teach this test to run it`);
    }
    // The README's first request, applied again while the API server answers what the README says
    // it answers for a few seconds after the install (the finalizer policy's schema not loaded yet).
    const [firstRequest] = commandsOf(await readmeBlock('kubectl apply -f examples/'));
    expect(firstRequest![0]).to.equal('kubectl');
    await eventually(async () => {
      const refused = await kubectl(firstRequest!.slice(1)).then(() => undefined, (error: Error) => error);
      if (refused) expect(refused.message).to.include('There can be a delay between when CustomResourceDefinitions are created and when they are available');
      return !refused;
    }, 'the README\'s first request is applied', { timeoutMs: 30_000, intervalMs: 500 });
  });

  after(async function () {
    this.timeout(60_000);
    driver?.close();
    await webhook?.stop();
    await jobs?.stop();
    client?.close();
    await plane?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs everything with one helm install: CRD, RBAC, workload, policies, CompositeController, and the Secrets its bootstrap Job made', async function () {
    expect(commands.map((command) => command.slice(0, 2).join(' '))).to.include('helm install');
    // Metacontroller comes first, as install/metacontroller/ patches it.
    expect(commands[0]).to.deep.equal(['kubectl', 'apply', '-k', 'install/metacontroller/']);
    const metacontroller = await get<{ spec: { template: { spec: { containers: { args: string[] }[] } } } }>('/apis/apps/v1/namespaces/metacontroller/statefulsets/metacontroller');
    expect(metacontroller.spec.template.spec.containers[0]!.args).to.include('--apply-strategy=server-side-apply');
    const installed = (await helmAt(['list', '-n', namespace, '-o', 'json']));
    expect((JSON.parse(installed) as { name: string; status: string; chart: string }[]).map(({ name, status, chart }) => ({ name, status, chart })))
      .to.deep.equal([{ name: release, status: 'deployed', chart: 'dpu-credential-webhook-0.3.0' }]);
    for (const path of [
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dpuservicecredentialrequests.svc.dpu.nvidia.com', controllerPath,
      `/apis/apps/v1/namespaces/${namespace}/deployments/${release}`, `/api/v1/namespaces/${namespace}/services/${release}`,
      `/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/${release}`, `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies/${release}`,
      `/api/v1/namespaces/${namespace}/serviceaccounts/${release}`, `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${release}`,
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-references',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-webhook-identity',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-selector-label',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-request-status',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-managed-labels',
      // Kubernetes 1.36 serves MutatingAdmissionPolicy: metacontrollerFinalizer.policy=auto installs it.
      '/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies/dpu-credential-metacontroller-finalizer',
    ]) expect(await status(path), path).to.equal(200);
    // helm waited for the pre-install Job, run once as its own ServiceAccount, before it made the rest.
    expect(jobs.runs.map(({ job, user, exitCode }) => ({ job, user, exitCode }))).to.deep.equal([
      { job: `${release}-bootstrap`, user: `system:serviceaccount:${namespace}:${release}-bootstrap`, exitCode: 0 },
    ]);
    const secrets = await chartSecrets();
    expect(Object.keys(secrets.token)).to.deep.equal(['token']);
    expect(Object.keys(secrets.ca).sort()).to.deep.equal(['ca.crt', 'tls.crt', 'tls.key']);
    expect(Object.keys(secrets.tls).sort()).to.deep.equal(['ca.crt', 'tls.crt', 'tls.key']);
    const labels = (await get<{ metadata: { labels: Record<string, string> } }>(`/api/v1/namespaces/${namespace}`)).metadata.labels;
    expect(labels).to.include({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    // The README's example request went in through the chart's CRD and admission policy.
    expect(await status('/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/default/dpuservicecredentialrequests/dpu-01-credential-request')).to.equal(200);
  });

  it('serves Metacontroller with the chart\'s hook token and certificate: a request becomes Ready', async function () {
    const controller = await get<CompositeController>(controllerPath);
    const endpoint = controller.spec.endpointConfigs![0]!;
    install = await WebhookInstall.fromCluster(plane.adminKubeConfig(), join(dir, 'mounts'), {
      namespace, caSecretName: endpoint.caBundle!.secretRef!.name, servingSecretName: `${release}-tls`,
      hookTokenSecretName: endpoint.authorization!.secretRef.name,
    });
    webhook = await startWebhookProcess(install, await webhookKubeconfigFile(plane, dir), join(dir, 'webhook.log'), { FILE_POLL_INTERVAL_MS: '100' });
    // Only the chart's token opens the hooks.
    expect((await install.call(webhook.port, '/customize', { method: 'POST', body: '{}', token: null })).status).to.equal(401);
    await startDriver();
    await createRequest('chart-installed');
    await driver!.reconcile('default', 'chart-installed');
    expect(condition(await readRequest('chart-installed'), 'Ready')).to.include({ status: 'True' });
    expect(await authenticatesAs((await readSecret(plane.adminKubeConfig(), 'chart-installed'))!)).to.equal('system:serviceaccount:default:chart-installed-sa');
  });

  it('helm upgrade keeps the hook token, the CA and a serving certificate with time left, byte for byte', async function () {
    const before = await chartSecrets();
    const runsBefore = jobs.runs.length;
    await helmAt(['upgrade', release, 'chart/dpu-credential-webhook', '-n', namespace, '--reuse-values', '--set', 'replicas=3']);
    // The pre-upgrade Job ran again (before-hook-creation made it anew) and found everything in place.
    expect(jobs.runs.slice(runsBefore).map(({ exitCode }) => exitCode)).to.deep.equal([0]);
    expect(jobs.runs.at(-1)!.log).to.include('everything was in place');
    const deployment = await get<{ spec: { replicas: number } }>(`/apis/apps/v1/namespaces/${namespace}/deployments/${release}`);
    expect(deployment.spec.replicas, 'the upgrade was applied').to.equal(3);
    expect(await chartSecrets()).to.deep.equal(before);
    // Metacontroller restarted after the upgrade reads the same Secrets, and the webhook still answers it.
    await startDriver();
    await createRequest('chart-upgraded');
    await driver!.reconcile('default', 'chart-upgraded');
    expect(condition(await readRequest('chart-upgraded'), 'Ready')).to.include({ status: 'True' });
  });

  it('renews the serving certificate at an upgrade from the same CA: Metacontroller keeps trusting it without a restart', async function () {
    const before = await chartSecrets();
    const servedBefore = (await install.call(webhook!.port, '/healthz')).serial;
    // More days before expiry than the certificate has: this upgrade must renew it.
    await helmAt(['upgrade', release, 'chart/dpu-credential-webhook', '-n', namespace, '--reuse-values', '--set', 'tls.renewBeforeDays=400']);
    const after = await chartSecrets();
    expect(after.tls['tls.crt']).to.not.equal(before.tls['tls.crt']);
    expect(after.tls['tls.key']).to.not.equal(before.tls['tls.key']);
    expect(after.ca).to.deep.equal(before.ca);
    expect(after.token).to.deep.equal(before.token);
    // The kubelet updates the mounted Secret; the webhook serves the new certificate once it has read it.
    await install.syncVolumes();
    const served = await eventually(async () => {
      const serial = (await install.call(webhook!.port, '/healthz')).serial;
      return serial !== servedBefore && serial;
    }, 'the webhook serves the renewed certificate', { intervalMs: 50 });
    expect(served, 'the webhook serves the renewed certificate').to.not.equal(servedBefore);
    const running = driver!;
    await createRequest('chart-renewed');
    await running.reconcile('default', 'chart-renewed');
    expect(condition(await readRequest('chart-renewed'), 'Ready')).to.include({ status: 'True' });
  });

  it('keeps a hook-token rotation under way (token and previous, docs/install.md) across helm upgrade', async function () {
    const tokenPath = `/api/v1/namespaces/${namespace}/secrets/${release}-hook-token`;
    const { token } = await secretData(`${release}-hook-token`);
    // Step 1 of the rotation: a new token, the old one kept as previous.
    const rotated = { token: Buffer.from('r'.repeat(64)).toString('base64'), previous: token! };
    await client.request('PATCH', tokenPath, { data: rotated }, { contentType: 'application/merge-patch+json' });
    await helmAt(['upgrade', release, 'chart/dpu-credential-webhook', '-n', namespace, '--reuse-values']);
    expect(await secretData(`${release}-hook-token`)).to.deep.equal(rotated);
  });

  it('helm uninstall leaves the CRD, the requests, their Secrets, the namespace and what the bootstrap Job made, and removes everything else', async function () {
    driver?.close();
    driver = undefined;
    await helmAt(['uninstall', release, '-n', namespace]);
    expect(await status('/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dpuservicecredentialrequests.svc.dpu.nvidia.com')).to.equal(200);
    for (const name of ['chart-installed', 'chart-upgraded', 'chart-renewed']) {
      const request = await readRequest(name);
      // Metacontroller's finalizer stays: deleting the request waits for a reinstall (docs/install.md).
      expect(request.metadata?.finalizers).to.include('metacontroller.io/compositecontroller-dpuservicecredentialrequest-controller');
      expect(await readSecret(plane.adminKubeConfig(), name), `Secret ${name}`).to.not.equal(undefined);
    }
    expect(await status(`/api/v1/namespaces/${namespace}`)).to.equal(200);
    // Not the release's: the Secrets (a reinstall finds the same token and CA) and the hook's objects (docs/install.md).
    for (const path of [
      `/api/v1/namespaces/${namespace}/secrets/${release}-hook-token`, `/api/v1/namespaces/${namespace}/secrets/${release}-ca`,
      `/api/v1/namespaces/${namespace}/secrets/${release}-tls`, `/apis/batch/v1/namespaces/${namespace}/jobs/${release}-bootstrap`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles/${release}-bootstrap`,
    ]) expect(await status(path), path).to.equal(200);
    for (const path of [
      controllerPath, `/apis/apps/v1/namespaces/${namespace}/deployments/${release}`, `/api/v1/namespaces/${namespace}/services/${release}`,
      `/apis/rbac.authorization.k8s.io/v1/clusterroles/${release}`,
      '/apis/rbac.authorization.k8s.io/v1/clusterroles/dpu-credential-user',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-references',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-selector-label',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-request-status',
      '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/dpu-credential-managed-labels',
      '/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies/dpu-credential-metacontroller-finalizer',
    ]) expect(await status(path), path).to.equal(404);
  });
});

describe('an install made with kubectl apply -k deploy/ moved to the chart (CHANGELOG, 0.3.0)', function () {
  this.timeout(120_000);
  let plane: ControlPlane;
  let dir: string;
  let kubeconfig: string;
  let client: KubeRestClient;
  let install: WebhookInstall;
  let webhook: WebhookProcess | undefined;
  let driver: MetacontrollerDriver | undefined;
  let jobs: BootstrapJobRunner;

  const kubectl = (args: string[]) => run(plane.kubectlPath, args, { cwd: repoRoot, env: { ...process.env, KUBECONFIG: kubeconfig } });
  const get = <T>(path: string) => client.request<T>('GET', path);
  const secretData = async (name: string) => (await get<{ data: Record<string, string> }>(`/api/v1/namespaces/${namespace}/secrets/${name}`)).data;
  const installSecrets = async () => ({
    token: await secretData(`${release}-hook-token`), ca: await secretData(`${release}-ca`), tls: await secretData(`${release}-tls`),
  });
  const startDriver = async () => {
    driver?.close();
    const path = join(dir, 'compositecontroller.yaml');
    await writeFile(path, stringify(await get<CompositeController>(controllerPath)));
    driver = await MetacontrollerDriver.start({
      host: await metacontrollerKubeConfig(plane), controllerPath: path,
      network: { [`${release}.${namespace}:443`]: { host: '127.0.0.1', port: webhook!.port } },
    });
    return driver;
  };
  const readRequest = async (name: string) => await plane.adminKubeConfig().makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }) as DpuServiceCredentialRequest;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'chart-move' });
    dir = await mkdtemp(join(tmpdir(), 'chart-move-'));
    kubeconfig = await plane.writeAdminKubeconfig();
    client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
    await createObjects(plane.adminKubeConfig(), [compositeControllerCrd]);
    jobs = await BootstrapJobRunner.start(plane, namespace, dir);
    // The kustomize install of docs/install.md, its Secrets made by hand (openssl, a random token).
    await kubectl(['apply', '-k', 'deploy/']);
    await kubectl(['apply', '-k', 'metacontroller/']);
    install = await WebhookInstall.create(plane.adminKubeConfig(), dir, { hookTokenSecretName: `${release}-hook-token` });
    webhook = await startWebhookProcess(install, await webhookKubeconfigFile(plane, dir), join(dir, 'webhook.log'), { FILE_POLL_INTERVAL_MS: '100' });
    await startDriver();
    await plane.adminKubeConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...parentApi, namespace: 'default',
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: 'before-move' },
        spec: { serviceAccount: { name: 'before-move-sa' }, type: 'kubeconfig', secret: { name: 'before-move' } },
      },
    });
    await driver!.reconcile('default', 'before-move');
  });

  after(async function () {
    this.timeout(60_000);
    driver?.close();
    await webhook?.stop();
    await jobs?.stop();
    client?.close();
    await plane?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is adopted by helm install --take-ownership --force-conflicts, keeping the hook token, the certificates, the requests and their Secrets', async function () {
    expect(condition(await readRequest('before-move'), 'Ready')).to.include({ status: 'True' });
    const secretsBefore = await installSecrets();
    const credentialBefore = (await readSecret(plane.adminKubeConfig(), 'before-move'))!.data;

    await helm(['install', release, 'chart/dpu-credential-webhook', '-n', namespace, '--take-ownership', '--force-conflicts', '--set', 'tls.source=external'],
      { home: join(dir, 'helm'), kubeconfig, cwd: repoRoot });

    const crd = await get<{ metadata: { labels: Record<string, string>; annotations: Record<string, string> } }>(
      '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dpuservicecredentialrequests.svc.dpu.nvidia.com');
    expect(crd.metadata.annotations).to.include({ 'helm.sh/resource-policy': 'keep', 'meta.helm.sh/release-name': release });
    expect(crd.metadata.labels).to.include({ 'app.kubernetes.io/managed-by': 'Helm' });
    // The token the bootstrap Job found and left as it was; the certificates are the installer's (tls.source=external).
    expect(await installSecrets()).to.deep.equal(secretsBefore);
    expect((await readSecret(plane.adminKubeConfig(), 'before-move'))!.data).to.deep.equal(credentialBefore);
    // Metacontroller restarted on the adopted CompositeController: the request stays Ready on the token it has.
    await startDriver();
    await driver!.reconcile('default', 'before-move');
    expect(condition(await readRequest('before-move'), 'Ready')).to.include({ status: 'True' });
    expect((await readSecret(plane.adminKubeConfig(), 'before-move'))!.data).to.deep.equal(credentialBefore);
  });
});
