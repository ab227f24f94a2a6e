// The chart without key material, installed the GitOps ways, on real API servers: its render
// applied with kubectl apply (as Argo CD applies what it renders) and the bootstrap Job run
// (harness/bootstrap-job.ts stands in for the Job controller and the kubelet, as the Job's
// ServiceAccount) is a working install the Metacontroller driver syncs; applying and running
// it again changes neither the token nor the CA; and the upgrade from the 0.3.0 chart, which
// rendered those Secrets itself, keeps them byte for byte.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { X509Certificate } from 'node:crypto';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { BootstrapRefused, runBootstrap } from '../../server/bootstrap/run.js';
import type { BootstrapSettings } from '../../server/bootstrap/settings.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { chartDir, repoRoot } from '../../scripts/render-deploy.js';
import { BootstrapJobRunner } from '../../harness/bootstrap-job.js';
import { compositeControllerCrd, compositeControllerPath } from '../../harness/composite-controller-crd.js';
import { connectionOf } from '../../harness/connection.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { eventually } from '../../harness/eventually.js';
import { chart0_3Commit, helm } from '../../harness/helm.js';
import { condition, createObjects, tokenKubeConfig } from '../../harness/kube-helpers.js';
import { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import type { CompositeController } from '../../harness/metacontroller/controller-spec.js';
import { metacontrollerKubeConfig } from '../../harness/metacontroller-identity.js';
import { controlPlaneStartTimeoutMs, parentApi } from '../../harness/webhook-env.js';
import { WebhookInstall } from '../../harness/webhook-install.js';
import { startWebhookProcess, type WebhookProcess } from '../../harness/webhook-process.js';

const run = promisify(execFile);
const release = 'dpu-credential-webhook';
type SecretData = Record<string, string>;

/** One control plane with Metacontroller's CRD, helm and kubectl pointed at it, and the bootstrap Job runner. */
class Cluster {
  client!: KubeRestClient;
  jobs!: BootstrapJobRunner;
  kubeconfig!: string;
  webhook: WebhookProcess | undefined;
  driver: MetacontrollerDriver | undefined;

  constructor(readonly plane: ControlPlane, readonly dir: string, readonly namespace: string) {}

  /** `pollJobs`: run each Job as it appears (helm waits for its hooks); otherwise when the test says. */
  static async start(name: string, namespace: string, pollJobs: boolean): Promise<Cluster> {
    const cluster = new Cluster(await startControlPlane({ name }), await mkdtemp(join(tmpdir(), `${name}-`)), namespace);
    cluster.kubeconfig = await cluster.plane.writeAdminKubeconfig();
    cluster.client = new KubeRestClient(connectionOf(cluster.plane.adminKubeConfig()), { timeoutMs: 10_000 });
    await createObjects(cluster.plane.adminKubeConfig(), [compositeControllerCrd]);
    await cluster.kubectl(['create', 'namespace', namespace]);
    cluster.jobs = await BootstrapJobRunner.start(cluster.plane, namespace, cluster.dir, { poll: pollJobs });
    return cluster;
  }

  async stop(): Promise<void> {
    this.driver?.close();
    await this.webhook?.stop();
    await this.jobs?.stop();
    this.client?.close();
    await this.plane.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  kubectl(args: string[]): Promise<{ stdout: string }> {
    return run(this.plane.kubectlPath, args, { cwd: repoRoot, env: { ...process.env, KUBECONFIG: this.kubeconfig } });
  }

  helm(args: string[]): Promise<string> {
    return helm(args, { home: join(this.dir, 'helm'), kubeconfig: this.kubeconfig, cwd: repoRoot });
  }

  async secret(name: string): Promise<{ data: SecretData; annotations: Record<string, string> }> {
    const secret = await this.client.request<{ data: SecretData; metadata: { annotations?: Record<string, string> } }>(
      'GET', `/api/v1/namespaces/${this.namespace}/secrets/${name}`);
    return { data: secret.data, annotations: secret.metadata.annotations ?? {} };
  }

  async secrets(): Promise<{ token: SecretData; ca: SecretData; tls: SecretData }> {
    return {
      token: (await this.secret(`${release}-hook-token`)).data, ca: (await this.secret(`${release}-ca`)).data, tls: (await this.secret(`${release}-tls`)).data,
    };
  }

  /** The webhook run with the Secrets as they are now (once), as the chart's Deployment mounts them. */
  async startWebhook(): Promise<WebhookProcess> {
    if (this.webhook) return this.webhook;
    const controller = await this.client.request<CompositeController>('GET', compositeControllerPath);
    const endpoint = controller.spec.endpointConfigs![0]!;
    const install = await WebhookInstall.fromCluster(this.plane.adminKubeConfig(), join(this.dir, 'mounts'), {
      namespace: this.namespace, caSecretName: endpoint.caBundle!.secretRef!.name, servingSecretName: `${release}-tls`,
      hookTokenSecretName: endpoint.authorization!.secretRef.name,
    });
    this.webhook = await startWebhookProcess(install, await this.webhookKubeconfig(), join(this.dir, 'webhook.log'));
    this.network[this.serviceAddress] = { host: '127.0.0.1', port: this.webhook.port };
    return this.webhook;
  }

  /** Where Metacontroller calls the webhook ({service}.{namespace}:{port}), routed to the webhook once it runs. */
  readonly network: Record<string, { host: string; port: number }> = {};
  private serviceAddress = '';

  /** Metacontroller (the driver) on the CompositeController the install made; it builds once the Secrets it reads exist. */
  async startDriver(onBuildError?: (error: Error) => void): Promise<MetacontrollerDriver> {
    this.driver?.close();
    const controller = await this.client.request<CompositeController>('GET', compositeControllerPath);
    const controllerFile = join(this.dir, 'compositecontroller.yaml');
    await writeFile(controllerFile, stringify(controller));
    const service = controller.spec.hooks.sync!.webhook.service!;
    this.serviceAddress = `${service.name}.${service.namespace}:${service.port}`;
    if (this.webhook) this.network[this.serviceAddress] = { host: '127.0.0.1', port: this.webhook.port };
    this.driver = await MetacontrollerDriver.start({
      host: await metacontrollerKubeConfig(this.plane), controllerPath: controllerFile, network: this.network,
      ...(onBuildError ? { onBuildError } : {}),
    });
    return this.driver;
  }

  /** A request made and synced by the driver (started if it is not). */
  async syncsARequest(name: string): Promise<DpuServiceCredentialRequest> {
    await this.startWebhook();
    const driver = this.driver ?? await this.startDriver();
    const requests = this.plane.adminKubeConfig().makeApiClient(CustomObjectsApi);
    // After an install or upgrade the API server refuses creates for a few seconds, until it has loaded the
    // request CRD's schema for the finalizer policy (README): the README's answer, so the test waits it out.
    await eventually(async () => {
      const refused = await requests.createNamespacedCustomObject({
        ...parentApi, namespace: 'default',
        body: { apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
          spec: { serviceAccount: { name: `${name}-sa` }, type: 'kubeconfig', secret: { name } } },
      }).then(() => undefined, (error: Error) => error);
      if (refused) expect(refused.message).to.include('There can be a delay between when CustomResourceDefinitions are created and when they are available');
      return !refused;
    }, `request ${name} is created`, { timeoutMs: 30_000, intervalMs: 500 });
    await driver.reconcile('default', name);
    return await requests.getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }) as DpuServiceCredentialRequest;
  }

  /** As the webhook's own ServiceAccount (the chart's), which the admission policies key on. */
  private async webhookKubeconfig(): Promise<string> {
    const minted = await this.client.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${this.namespace}/serviceaccounts/${release}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 86_400 } });
    const path = join(this.dir, 'webhook.kubeconfig');
    await writeFile(path, tokenKubeConfig(this.plane.server, this.plane.pki.caCertPem, minted.status.token).exportConfig(), { mode: 0o600 });
    return path;
  }
}

describe('the chart rendered with helm template and applied with kubectl apply, as Argo CD does, plus its bootstrap Job', function () {
  this.timeout(180_000);
  const namespace = 'dpu-credential-webhook';
  let cluster: Cluster;
  let rendered: string;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    cluster = await Cluster.start('gitops-apply', namespace, false);
    rendered = join(cluster.dir, 'rendered.yaml');
    await writeFile(rendered, await cluster.helm(['template', release, chartDir, '--namespace', namespace]));
  });

  after(async function () {
    this.timeout(60_000);
    await cluster?.stop();
  });

  it('is a working install once the Job ran: as its own ServiceAccount it made the token, the CA and the serving certificate, and a request becomes Ready', async function () {
    await cluster.kubectl(['apply', '-f', rendered]);
    // Metacontroller sees the CompositeController before the Job has made the Secrets it reads: its build
    // fails and is retried with backoff (harness/metacontroller/MODEL.md), then succeeds.
    const buildErrors: string[] = [];
    const driverBuilt = cluster.startDriver((error) => buildErrors.push(error.message));
    await eventually(async () => buildErrors.length > 0, 'Metacontroller\'s first build fails', { timeoutMs: 10_000, intervalMs: 20 });
    const [bootstrap] = await cluster.jobs.runPending();
    expect(bootstrap, 'the Job ran').to.not.equal(undefined);
    expect({ user: bootstrap!.user, exitCode: bootstrap!.exitCode }, bootstrap!.log).to.deep.equal({
      user: `system:serviceaccount:${namespace}:${release}-bootstrap`, exitCode: 0,
    });
    await driverBuilt;
    expect(buildErrors[0]).to.match(/not ?found/i);
    const secrets = await cluster.secrets();
    expect(Object.keys(secrets.token)).to.deep.equal(['token']);
    expect(Object.keys(secrets.ca).sort()).to.deep.equal(['ca.crt', 'tls.crt', 'tls.key']);
    expect(Object.keys(secrets.tls).sort()).to.deep.equal(['ca.crt', 'tls.crt', 'tls.key']);
    expect((await cluster.secret(`${release}-tls`)).annotations).to.include({
      'svc.dpu.nvidia.com/dns-names': `${release}.${namespace},${release}.${namespace}.svc,${release}.${namespace}.svc.cluster.local`,
    });
    // The Job's log names what it made, never the data.
    expect(bootstrap!.log).to.include(`made the CA ${release}-ca`).and.not.include(Buffer.from(secrets.token.token!, 'base64').toString());
    const request = await cluster.syncsARequest('applied');
    expect(condition(request, 'Ready')).to.include({ status: 'True' });
  });

  it('applied again, and its Job run again (Argo CD re-creates a hook at each sync), changes neither the token nor the CA nor a certificate with time left', async function () {
    const before = await cluster.secrets();
    await cluster.kubectl(['apply', '-f', rendered]);
    // A Job that completed is not run again by an apply of the same spec: the sync's hook is a new Job.
    expect(await cluster.jobs.runPending()).to.deep.equal([]);
    await cluster.kubectl(['delete', 'job', '-n', namespace, `${release}-bootstrap`]);
    await cluster.kubectl(['apply', '-f', rendered]);
    const [again] = await cluster.jobs.runPending();
    expect(again?.exitCode, again?.log).to.equal(0);
    expect(again!.log).to.include('everything was in place');
    expect(await cluster.secrets()).to.deep.equal(before);
    // Metacontroller restarted reads the same token and CA.
    await cluster.startDriver();
    const request = await cluster.syncsARequest('applied-again');
    expect(condition(request, 'Ready')).to.include({ status: 'True' });
  });

  it('gives the Job\'s ServiceAccount no more than the Secrets it makes: it may not read or update another Secret of its namespace', async function () {
    const other = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'someone-elses', namespace }, stringData: { password: 'x' } };
    await cluster.client.request('POST', `/api/v1/namespaces/${namespace}/secrets`, other);
    const can = async (verb: string, name?: string) => {
      const { stdout } = await cluster.kubectl(['auth', 'can-i', verb, name ? `secrets/${name}` : 'secrets', '-n', namespace,
        `--as=system:serviceaccount:${namespace}:${release}-bootstrap`]).catch((error: { stdout: string }) => error);
      return stdout.trim();
    };
    expect(await can('get', 'someone-elses')).to.equal('no');
    expect(await can('update', 'someone-elses')).to.equal('no');
    expect(await can('list')).to.equal('no');
    expect(await can('delete', `${release}-ca`)).to.equal('no');
    expect(await can('get', `${release}-ca`)).to.equal('yes');
    expect(await can('update', `${release}-tls`)).to.equal('yes');
  });
});

describe('the bootstrap against a real API server: races and Secrets it will not overwrite', function () {
  this.timeout(120_000);
  let cluster: Cluster;
  const settingsFor = (namespace: string): BootstrapSettings => ({
    namespace, hookTokenSecret: 'dcw-hook-token', logLevel: 'info',
    tls: { caSecret: 'dcw-ca', servingSecret: 'dcw-tls', dnsNames: [`dcw.${namespace}`, `dcw.${namespace}.svc`], caValidityDays: 10, servingValidityDays: 5, renewBeforeDays: 1 },
  });
  const labels = { 'app.kubernetes.io/managed-by': 'test' };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    cluster = await Cluster.start('bootstrap-races', 'races', false);
  });

  after(async function () {
    this.timeout(60_000);
    await cluster?.stop();
  });

  it('run three times at once (Jobs of two releases\' syncs, or a Job and an installer), makes one token and one CA, and a serving certificate that CA signed', async function () {
    const runs = await Promise.all([1, 2, 3].map(() => runBootstrap(cluster.client, settingsFor('races'), labels)));
    const done = runs.flatMap((report) => report.done);
    expect(done.filter((line) => line.startsWith('made the CA'))).to.have.length(1);
    expect(done.filter((line) => line.startsWith('made the hook token'))).to.have.length(1);
    const ca = await cluster.secret('dcw-ca');
    const tls = await cluster.secret('dcw-tls');
    const decode = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString();
    expect(new X509Certificate(decode(tls.data['tls.crt'])).verify(new X509Certificate(decode(ca.data['ca.crt'])).publicKey)).to.equal(true);
    expect(tls.data['ca.crt']).to.equal(ca.data['ca.crt']);
    // And a run after them finds everything in place.
    expect((await runBootstrap(cluster.client, settingsFor('races'), labels)).done).to.deep.equal([]);
  });

  it('refuses a CA Secret without its key, changing nothing, and makes nothing else either', async function () {
    await cluster.kubectl(['create', 'namespace', 'broken']);
    const broken = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dcw-ca', namespace: 'broken' }, stringData: { 'ca.crt': 'not a certificate' } };
    await cluster.client.request('POST', '/api/v1/namespaces/broken/secrets', broken);
    const before = await cluster.client.request<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/broken/secrets/dcw-ca');
    const refused = await runBootstrap(cluster.client, settingsFor('broken'), labels).then(() => undefined, (error: Error) => error);
    expect(refused).to.be.instanceOf(BootstrapRefused);
    expect(refused!.message).to.include('Secret dcw-ca exists but').and.include('not overwritten');
    const after = await cluster.client.request<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/broken/secrets/dcw-ca');
    expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    const tokenStatus = await cluster.client.request('GET', '/api/v1/namespaces/broken/secrets/dcw-hook-token').then(() => 200, (error: { statusCode: number }) => error.statusCode);
    expect(tokenStatus).to.equal(404);
  });
});

describe('the upgrade from the 0.3.0 chart, which rendered the token, the CA and the serving certificate itself', function () {
  this.timeout(180_000);
  const namespace = 'dcw-upgraded';
  let cluster: Cluster;
  let oldChart: string;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    cluster = await Cluster.start('gitops-upgrade', namespace, true);
    oldChart = join(cluster.dir, 'chart-0.3.0');
    await mkdir(oldChart);
    const { stdout: archive } = await run('git', ['-C', repoRoot, 'archive', '--format=tar', chart0_3Commit, 'chart/'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    await writeFile(join(oldChart, 'chart.tar'), archive);
    await run('tar', ['-xf', join(oldChart, 'chart.tar'), '-C', oldChart]);
  });

  after(async function () {
    this.timeout(60_000);
    await cluster?.stop();
  });

  it('keeps the token and the CA byte for byte, and the serving certificate with time left, through helm upgrade: the bootstrap marked them kept before helm dropped them', async function () {
    await cluster.helm(['install', release, join(oldChart, 'chart/dpu-credential-webhook'), '-n', namespace]);
    expect(cluster.jobs.runs, 'the 0.3.0 chart has no Job').to.deep.equal([]);
    const before = await cluster.secrets();
    expect((await cluster.secret(`${release}-ca`)).annotations).to.include({ 'meta.helm.sh/release-name': release });

    await cluster.helm(['upgrade', release, chartDir, '-n', namespace]);
    expect(cluster.jobs.runs.map(({ exitCode }) => exitCode), cluster.jobs.runs[0]?.log).to.deep.equal([0]);
    expect(cluster.jobs.runs[0]!.log).to.include(`marked ${release}-ca helm.sh/resource-policy=keep`);
    expect(await cluster.secrets()).to.deep.equal(before);
    for (const name of [`${release}-hook-token`, `${release}-ca`, `${release}-tls`]) {
      expect((await cluster.secret(name)).annotations, name).to.include({ 'helm.sh/resource-policy': 'keep' });
    }
    const manifest = await cluster.helm(['get', 'manifest', release, '-n', namespace]);
    expect(manifest, 'the Secrets are no longer the release\'s').to.not.include('kind: Secret');

    // Metacontroller reads the CA it always trusted, and the webhook still serves the 0.3.0 certificate.
    const request = await cluster.syncsARequest('upgraded');
    expect(condition(request, 'Ready')).to.include({ status: 'True' });

    // The next upgrade renews the serving certificate from the 0.3.0 CA (more days before expiry than it has).
    await cluster.helm(['upgrade', release, chartDir, '-n', namespace, '--set', 'tls.renewBeforeDays=400']);
    const renewed = await cluster.secrets();
    expect(renewed.ca).to.deep.equal(before.ca);
    expect(renewed.token).to.deep.equal(before.token);
    expect(renewed.tls['tls.crt']).to.not.equal(before.tls['tls.crt']);
    expect(renewed.tls['ca.crt']).to.equal(before.ca['ca.crt']);
  });
});
