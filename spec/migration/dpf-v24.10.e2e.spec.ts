// Replacing DPF v24.10's controller in place, as docs/migrating.md says, on what that controller
// left behind (spec/fixtures/dpf-v24.10/, made by DPF's own controller built from its source):
// the requests with DPF's finalizer and status, its label-less ServiceAccounts in the host and
// the DPU cluster, its Secrets (one in `default` for a request elsewhere) holding real tokens
// minted for those ServiceAccounts, unbound as DPF's are. The test runs every block of the
// migration that the document marks `test: runs`, as written, with kubectl, in order, and
// samples each consumer's Secret throughout: it must always hold a token its API server accepts.
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { adoptServiceAccountAnnotation } from '../../server/credential/service-account-claim.js';
import { managedLabels } from '../../server/credential/names.js';
import { isNotFound, KubeRestClient } from '../../server/kube/rest.js';
import { connectionOf } from '../../harness/connection.js';
import { eventually } from '../../harness/eventually.js';
import { condition } from '../../harness/kube-helpers.js';
import { authenticatesAs } from '../../harness/secrets.js';
import { webhookKubeConfig } from '../../harness/webhook-identity.js';
import { controlPlaneStartTimeoutMs, parentApi, WebhookEnv } from '../../harness/webhook-env.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '../fixtures/dpf-v24.10');
const migratingDoc = join(here, '../../docs/migrating.md');
const admission = (file: string) => join(here, '../../deploy/admission', file);
const dpfFinalizer = 'dpu.nvidia.com/dpuservicecredentialrequest';
const requestsPath = (namespace: string, name = '') =>
  `/apis/${parentApi.group}/${parentApi.version}/namespaces/${namespace}/${parentApi.plural}${name ? `/${name}` : ''}`;

/** The blocks of "Migrating from DPF's controller" marked `<!-- test: runs -->`, in order, without the list's indentation. */
async function migrationBlocks(): Promise<string[]> {
  const doc = await readFile(migratingDoc, 'utf8');
  const start = doc.indexOf("## Migrating from DPF's controller");
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const blocks: string[] = [];
  const pattern = /<!-- test: runs -->\n( *)```sh\n([\s\S]*?)\n\1```/g;
  for (const match of section.matchAll(pattern)) {
    const indent = match[1]!.length;
    blocks.push(match[2]!.split('\n').map((line) => line.slice(Math.min(indent, line.length - line.trimStart().length))).join('\n'));
  }
  return blocks;
}

type Fixture = KubernetesObject & { stringData?: Record<string, string>; type?: string; status?: unknown };

async function readFixture(file: string): Promise<Fixture[]> {
  return parseAllDocuments(await readFile(join(fixtures, file), 'utf8'))
    .map((document) => document.toJS() as Fixture | null).filter((object): object is Fixture => object !== null);
}

const pathOf = (object: KubernetesObject): string => {
  const namespace = object.metadata?.namespace;
  switch (object.kind) {
    case 'Namespace': return '/api/v1/namespaces';
    case 'ServiceAccount': return `/api/v1/namespaces/${namespace}/serviceaccounts`;
    case 'Secret': return `/api/v1/namespaces/${namespace}/secrets`;
    case 'DPUCluster': return `/apis/provisioning.dpu.nvidia.com/v1alpha1/namespaces/${namespace}/dpuclusters`;
    case 'DPUServiceCredentialRequest': return requestsPath(namespace!);
    default: throw new Error(`no path for ${object.kind}`);
  }
};

/** A token as DPF's controller minted it: a TokenRequest bound to no object. */
async function mintUnbound(client: KubeRestClient, namespace: string, name: string, seconds: number): Promise<string> {
  const review = await client.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: seconds } });
  return review.status.token;
}

const substitute = (text: string, values: Record<string, string>) =>
  text.replace(/\$\{([A-Z_]+)\}/g, (whole, key: string) => {
    if (!(key in values)) throw new Error(`fixture placeholder ${whole} has no value`);
    return values[key]!;
  });

describe('migrating from DPF v24.10 as docs/migrating.md says (its own controller\'s objects, real API servers, the driver)', function () {
  this.timeout(controlPlaneStartTimeoutMs + 240_000);
  let env: WebhookEnv;
  let host: KubeRestClient;
  let dpu: KubeRestClient;
  let work: string;
  let hostKubeconfig: string;
  const ovn = { namespace: 'dpf-operator-system', name: 'ovn-dpu' };
  const e2e = { namespace: 'dpucr-test-ns', name: 'dpu-01-credential-request' };
  const uidsBefore: Record<string, string> = {};
  const samples: { secret: string; ok: boolean; why?: string }[] = [];
  let sampling = false;
  let sampler: Promise<void> | undefined;
  /** The consumers' Secrets that must exist and hold an accepted token now, and those that may. */
  const mustHold = new Set(['default/dpu-01-credential', 'dpf-operator-system/ovn-dpu']);
  const mayHold = new Set(['dpucr-test-ns/dpu-01-credential']);

  const readRequest = (ref: { namespace: string; name: string }) =>
    host.request<DpuServiceCredentialRequest>('GET', requestsPath(ref.namespace, ref.name));
  const readSa = (client: KubeRestClient, namespace: string, name: string) =>
    client.request<KubernetesObject>('GET', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`);
  const readSecret = (namespace: string, name: string) =>
    host.request<V1Secret>('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
  const reconcileAll = async () => {
    for (const ref of [ovn, e2e]) await env.driver.reconcile(ref.namespace, ref.name);
  };
  const runBlock = async (script: string) => {
    const kubectlDir = dirname(env.host.kubectlPath);
    return await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: work, env: { ...process.env, KUBECONFIG: hostKubeconfig, PATH: `${kubectlDir}:${process.env.PATH ?? ''}` },
    });
  };

  async function sampleOnce(): Promise<void> {
    for (const ref of [...mustHold, ...mayHold]) {
      const [namespace, name] = ref.split('/') as [string, string];
      const secret = await readSecret(namespace, name);
      if (!secret) {
        if (mustHold.has(ref)) samples.push({ secret: ref, ok: false, why: 'missing' });
        continue;
      }
      try {
        // As a consumer uses it: its kubeconfig, or its four tokenFile keys.
        await authenticatesAs(secret);
        samples.push({ secret: ref, ok: true });
      } catch (error) {
        samples.push({ secret: ref, ok: false, why: String(error) });
      }
    }
  }

  before(async function () {
    env = await WebhookEnv.start({ hostIdentity: webhookKubeConfig });
    host = new KubeRestClient(connectionOf(env.hostConfig()), { timeoutMs: 10_000 });
    dpu = new KubeRestClient(connectionOf(env.target.adminKubeConfig()), { timeoutMs: 10_000 });
    work = await mkdtemp(join(tmpdir(), 'dpf-migration-'));
    hostKubeconfig = await env.host.writeAdminKubeconfig();
    // The admission policies that hold the webhook's own identity to what it may write.
    await run(env.host.kubectlPath, ['--kubeconfig', hostKubeconfig, 'apply', '-f', admission('webhook-identity.yaml'), '-f', admission('managed-labels.yaml')]);

    // DPF's world, as its controller left it.
    const dpuCa = Buffer.from(env.target.pki.caCertPem).toString('base64');
    const hostUrl = new URL(env.host.server);
    const values: Record<string, string> = {
      DPU_ADMIN_KUBECONFIG: env.target.adminKubeconfigYaml(),
      DPU_SERVER: env.target.server, DPU_CA_DATA: dpuCa,
      HOST_CA_PEM: env.host.pki.caCertPem, HOST_HOST: hostUrl.hostname, HOST_PORT: hostUrl.port,
    };
    for (const object of await readFixture('dpu.yaml')) await dpu.request('POST', pathOf(object), object);
    const hostObjects = await readFixture('host.yaml');
    for (const object of hostObjects.filter((o) => o.kind !== 'Secret' && o.kind !== 'DPUServiceCredentialRequest')) {
      await host.request('POST', pathOf(object), object).catch((error: unknown) => {
        if (!(object.kind === 'Namespace' && (error as { statusCode?: number }).statusCode === 409)) throw error;
      });
    }
    // DPF's tokens: unbound, 1 h for the e2e request (no duration), 24 h for OVN's.
    values.DPF_DPU_TOKEN = await mintUnbound(dpu, 'default', 'dpu-01-sa', 3600);
    values.DPF_HOST_TOKEN = await mintUnbound(host, ovn.namespace, 'ovn-dpu', 86400);
    for (const object of hostObjects.filter((o) => o.kind === 'Secret')) {
      const { stringData, ...secret } = object;
      await host.request('POST', pathOf(object), {
        ...secret, data: Object.fromEntries(Object.entries(stringData ?? {}).map(([key, value]) =>
          [key, Buffer.from(substitute(value, values)).toString('base64')])),
      });
    }
    for (const object of hostObjects.filter((o) => o.kind === 'DPUServiceCredentialRequest')) {
      const { status, ...request } = object;
      await host.request('POST', pathOf(object), request);
      await host.request('PATCH', `${requestsPath(object.metadata!.namespace!, object.metadata!.name!)}/status`, { status },
        { contentType: 'application/merge-patch+json' });
    }
    uidsBefore.dpu = (await readSa(dpu, 'default', 'dpu-01-sa')).metadata!.uid!;
    uidsBefore.host = (await readSa(host, ovn.namespace, 'ovn-dpu')).metadata!.uid!;
    sampling = true;
    sampler = (async () => {
      while (sampling) {
        await sampleOnce();
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
  });

  after(async function () {
    sampling = false;
    await sampler;
    host?.close();
    dpu?.close();
    await env?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('starts from DPF\'s objects: label-less ServiceAccounts, DPF\'s finalizer, a Secret in default, tokens consumers can use', async function () {
    expect((await readSa(dpu, 'default', 'dpu-01-sa')).metadata?.labels ?? {}).to.deep.equal({});
    expect((await readRequest(e2e)).metadata?.finalizers).to.deep.equal([dpfFinalizer]);
    expect((await readRequest(e2e)).status?.secret).to.equal('default/dpu-01-credential');
    await sampleOnce();
    expect(samples.filter((sample) => !sample.ok)).to.deep.equal([]);
  });

  it('follows docs/migrating.md step by step: every request Ready, the same Secret names, the ServiceAccounts kept', async function () {
    const blocks = await migrationBlocks();
    // record, grants, keep the ServiceAccount's namespace, annotate ServiceAccounts, annotate Secrets, remove
    // DPF's finalizer, delete the Secrets left in default, check.
    expect(blocks).to.have.length(8);
    const [record, grants, keepNamespace, annotateServiceAccounts, annotateSecrets, removeFinalizer, deleteOld, check] = blocks as
      [string, string, string, string, string, string, string, string];

    await runBlock(record);
    expect((await readFile(join(work, 'dpf-requests.txt'), 'utf8')).trim().split('\n').map((line) => line.trimEnd()).sort()).to.deep.equal([
      'dpf-operator-system ovn-dpu dpf-operator-system/ovn-dpu dpf-operator-system/ovn-dpu',
      'dpucr-test-ns dpu-01-credential-request default/dpu-01-sa default/dpu-01-credential dpf-operator-system/dpu-cluster-1',
    ]);
    await runBlock(grants);
    await runBlock(keepNamespace);
    expect(((await readRequest(e2e)).spec as { serviceAccount?: unknown }).serviceAccount).to.deep.equal({ name: 'dpu-01-sa', namespace: 'default' });

    // Installed: Metacontroller syncs each request at once. Without consent nothing is taken, nothing changes.
    const dpfOvnSecret = await readSecret(ovn.namespace, 'ovn-dpu');
    await reconcileAll();
    const conflicted = await readRequest(e2e);
    expect(condition(conflicted, 'ServiceAccountReconciled')).to.include({ status: 'False', reason: 'ServiceAccountConflict' });
    expect(condition(conflicted, 'ServiceAccountReconciled')?.message).to.contain(
      `kubectl -n default annotate serviceaccount dpu-01-sa ${adoptServiceAccountAnnotation}=dpucr-test-ns/dpu-01-credential-request`);
    expect(condition(await readRequest(ovn), 'Ready')).to.include({ status: 'False' });
    expect((await readSa(dpu, 'default', 'dpu-01-sa')).metadata?.labels ?? {}).to.deep.equal({});

    await runBlock(annotateServiceAccounts);
    await reconcileAll();
    // The OVN request waits for its Secret's consent (SecretNotOwned): DPF's Secret is still as DPF left it.
    expect(condition(await readRequest(ovn), 'SecretReconciled')).to.include({ status: 'False', reason: 'SecretNotOwned' });
    expect(await readSecret(ovn.namespace, 'ovn-dpu')).to.deep.equal(dpfOvnSecret);
    const adopted = await readSa(dpu, 'default', 'dpu-01-sa');
    expect(adopted.metadata?.uid).to.equal(uidsBefore.dpu);
    expect(adopted.metadata?.labels).to.deep.equal(managedLabels(e2e.namespace, e2e.name));
    expect(condition(await readRequest(e2e), 'Ready')).to.include({ status: 'True' });
    await eventually(async () => (await host.request<{ items: { reason?: string; regarding?: { name?: string } }[] }>(
      'GET', `/apis/events.k8s.io/v1/namespaces/${e2e.namespace}/events`)).items
      .some((event) => event.reason === 'ServiceAccountAdopted' && event.regarding?.name === e2e.name), 'the ServiceAccountAdopted Event');
    const newSecret = await readSecret(e2e.namespace, 'dpu-01-credential');
    expect(newSecret?.metadata?.ownerReferences?.[0]).to.include({ kind: 'DPUServiceCredentialRequest', name: e2e.name, controller: true });
    // From here on the request's Secret is the one in its own namespace: its consumers move there.
    mustHold.add('dpucr-test-ns/dpu-01-credential');

    await runBlock(annotateSecrets);
    await reconcileAll();
    const ovnSa = await readSa(host, ovn.namespace, 'ovn-dpu');
    expect(ovnSa.metadata?.uid).to.equal(uidsBefore.host);
    expect(ovnSa.metadata?.labels).to.deep.equal(managedLabels(ovn.namespace, ovn.name));
    const ovnSecret = await readSecret(ovn.namespace, 'ovn-dpu');
    expect(ovnSecret?.metadata?.ownerReferences?.[0]).to.include({ kind: 'DPUServiceCredentialRequest', name: ovn.name, controller: true });
    expect(Object.keys(ovnSecret?.data ?? {}).sort()).to.deep.equal(['KUBERNETES_CA_DATA', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'TOKEN_FILE']);

    await runBlock(removeFinalizer);
    for (const ref of [ovn, e2e]) expect((await readRequest(ref)).metadata?.finalizers ?? []).to.not.include(dpfFinalizer);

    mustHold.delete('default/dpu-01-credential');
    await runBlock(deleteOld);
    expect(await readSecret('default', 'dpu-01-credential')).to.equal(undefined);

    await reconcileAll();
    await runBlock(check);
    for (const ref of [ovn, e2e]) {
      const request = await readRequest(ref);
      expect(condition(request, 'Ready'), `${ref.namespace}/${ref.name}`).to.include({ status: 'True' });
      expect(request.status?.serviceAccounts?.map((entry) => entry.serviceAccountUID))
        .to.include(ref === ovn ? uidsBefore.host : uidsBefore.dpu);
    }
    // The Secret names DPF used, in the request's namespace.
    expect(await readSecret(ovn.namespace, 'ovn-dpu')).to.not.equal(undefined);
    expect(await readSecret(e2e.namespace, 'dpu-01-credential')).to.not.equal(undefined);
  });

  it('kept every consumer\'s Secret holding a token its API server accepts, throughout', async function () {
    sampling = false;
    await sampler;
    await sampleOnce();
    const failures = samples.filter((sample) => !sample.ok);
    expect(failures).to.deep.equal([]);
    expect(samples.filter((sample) => sample.secret === 'dpucr-test-ns/dpu-01-credential').length).to.be.greaterThan(0);
    expect(samples.filter((sample) => sample.secret === 'default/dpu-01-credential').length).to.be.greaterThan(0);
  });

  it('never takes a label-less ServiceAccount without consent, nor one whose consent names another request, nor an adopted one for a stranger of the same name', async function () {
    // DPF-made-like ServiceAccounts: one nobody handed over, one handed to dpucr-test-ns/thief.
    await dpu.request('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name: 'bare-sa' }, automountServiceAccountToken: false });
    await dpu.request('POST', '/api/v1/namespaces/default/serviceaccounts',
      { metadata: { name: 'handed-sa', annotations: { [adoptServiceAccountAnnotation]: 'dpucr-test-ns/thief' } } });
    const before = {
      bare: await readSa(dpu, 'default', 'bare-sa'), handed: await readSa(dpu, 'default', 'handed-sa'), adopted: await readSa(dpu, 'default', 'dpu-01-sa'),
    };
    // A stranger of the same name in namespace team-b, granted the DPUCluster and its namespace default.
    await host.request('POST', '/api/v1/namespaces', { metadata: { name: 'team-b' } });
    for (const role of ['dpu-credential-user', 'dpu-credential-target-namespaces']) {
      await host.request('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/dpf-operator-system/rolebindings', {
        metadata: { name: `team-b-${role}` }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:serviceaccounts:team-b' }],
      });
    }
    const cluster = { name: 'dpu-cluster-1', namespace: 'dpf-operator-system' };
    await env.createRequest('bare', { serviceAccount: { name: 'bare-sa', namespace: 'default' }, targetCluster: cluster, type: 'kubeconfig',
      secret: { name: 'bare-cred' } }, { namespace: 'dpucr-test-ns' });
    await env.createRequest('thief', { serviceAccount: { name: 'handed-sa', namespace: 'default' }, targetCluster: cluster, type: 'kubeconfig',
      secret: { name: 'thief-cred' } }, { namespace: 'team-b' });
    // The migrated request's ServiceAccount, asked for by a request of the same name in team-b.
    await env.createRequest(e2e.name, { serviceAccount: { name: 'dpu-01-sa', namespace: 'default' }, targetCluster: cluster, type: 'kubeconfig',
      secret: { name: 'twin-cred' } }, { namespace: 'team-b' });
    await env.driver.reconcile('team-b', e2e.name);
    expect(condition(await readRequest({ namespace: 'team-b', name: e2e.name }), 'ServiceAccountReconciled')).to.include({
      status: 'False', reason: 'ServiceAccountConflict',
      message: 'service account default/dpu-01-sa is already in use (it was created for another request); choose another name',
    });
    for (const [namespace, name] of [['dpucr-test-ns', 'bare'], ['team-b', 'thief']] as const) {
      await env.driver.reconcile(namespace, name);
      const request = await readRequest({ namespace, name });
      expect(condition(request, 'ServiceAccountReconciled'), name).to.include({ status: 'False', reason: 'ServiceAccountConflict' });
      expect(await readSecret(namespace, `${name}-cred`), name).to.equal(undefined);
    }
    expect(condition(await readRequest({ namespace: 'team-b', name: 'thief' }), 'ServiceAccountReconciled')?.message)
      .to.contain('annotation names another request');
    // Nothing changed on either ServiceAccount: not a label, not a resourceVersion.
    expect(await readSa(dpu, 'default', 'bare-sa')).to.deep.equal(before.bare);
    expect(await readSa(dpu, 'default', 'handed-sa')).to.deep.equal(before.handed);
    expect(await readSa(dpu, 'default', 'dpu-01-sa')).to.deep.equal(before.adopted);
  });

  it('deletes a migrated request to the end: gone, its ServiceAccount with it, its Secret owned by it (garbage-collected)', async function () {
    const requests = await Promise.all([ovn, e2e].map(readRequest));
    for (const ref of [ovn, e2e]) await host.request('DELETE', requestsPath(ref.namespace, ref.name));
    await reconcileAll().catch(() => undefined);
    for (const [index, ref] of [ovn, e2e].entries()) {
      await env.driver.reconcile(ref.namespace, ref.name).catch(() => undefined);
      const gone = await readRequest(ref).then(() => false, (error: unknown) => isNotFound(error));
      expect(gone, `${ref.namespace}/${ref.name} is gone`).to.equal(true);
      // The control planes run no garbage collector: the owner reference is what deletes the Secret.
      const secret = await readSecret(ref.namespace, ref === ovn ? 'ovn-dpu' : 'dpu-01-credential');
      expect(secret?.metadata?.ownerReferences?.[0]).to.include({ uid: requests[index]!.metadata!.uid, controller: true });
    }
    expect(await readSa(dpu, 'default', 'dpu-01-sa').then(() => 'kept', (error: unknown) => (isNotFound(error) ? 'deleted' : String(error)))).to.equal('deleted');
    expect(await readSa(host, ovn.namespace, 'ovn-dpu').then(() => 'kept', (error: unknown) => (isNotFound(error) ? 'deleted' : String(error)))).to.equal('deleted');
  });
});

