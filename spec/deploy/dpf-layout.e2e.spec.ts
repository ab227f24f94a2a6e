// The chart's value dpf.operatorNamespace on real API servers: a request shaped as DPF's guides
// make them (in dpf-operator-system, tokenFile, 24h, its ServiceAccount in dpf-operator-system
// of the DPU cluster, the DPUCluster in a namespace of its own) is refused without it and
// becomes Ready with what the chart renders for that value alone, at sync and at apply. The
// grant reaches DPUClusters and nothing more.
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { chartDir } from '../../scripts/render-deploy.js';
import { registerDpuCluster } from '../../harness/dpucluster.js';
import { eventually } from '../../harness/eventually.js';
import { helm } from '../../harness/helm.js';
import { apiErrorCode, condition, createObjects, readManifests } from '../../harness/kube-helpers.js';
import { decode, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

const operatorNamespace = 'dpf-operator-system';
const clusterNamespace = 'dpu-cplane-tenant1';
const referencesPolicy = fileURLToPath(new URL('../../deploy/admission/references.yaml', import.meta.url));

/** DPF's OVN request (docs/guides/usecases/hbn_ovn, ovn-credentials.yaml) aimed at a DPUCluster in its own namespace. */
const operatorShapedSpec = (name: string, serviceAccountNamespace = operatorNamespace) => ({
  serviceAccount: { name, namespace: serviceAccountNamespace }, duration: '24h', type: 'tokenFile',
  targetCluster: { name: clusterNamespace, namespace: clusterNamespace },
  secret: { name, namespace: operatorNamespace }, metadata: { labels: { 'dpu.nvidia.com/image-pull-secret': '' } },
});

describe('the chart value dpf.operatorNamespace: DPF\'s requests use DPUClusters in their own namespaces (real API servers)', function () {
  this.timeout(60_000);
  let env: WebhookEnv;
  let home: string;

  /** The objects the chart renders from these templates with these values, as helm install would create them. */
  const rendered = async (templates: string[], values: string[] = []) => {
    const stdout = await helm(['template', 'dpu-credential-webhook', chartDir, '--namespace', 'dpu-credential-webhook',
      ...templates.flatMap((template) => ['--show-only', template]), ...values], { home });
    return parseAllDocuments(stdout).map((document) => document.toJS() as KubernetesObject | null)
      .filter((object): object is KubernetesObject => object !== null);
  };
  const ready = async (namespace: string, name: string) => condition(await env.driver.readParent(namespace, name), 'Ready');
  const targetCore = () => env.target.adminKubeConfig().makeApiClient(CoreV1Api);
  /** The API server's refusal of creating the request, or undefined when it was admitted. */
  const refusal = (name: string, spec: Record<string, unknown>, namespace = operatorNamespace) =>
    env.createRequest(name, spec, { namespace }).then(() => undefined, (error: { code?: number; body?: unknown }) => error);

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    home = await mkdtemp(join(tmpdir(), 'dpf-layout-helm-'));
    env = await WebhookEnv.start();
    const hostCore = env.hostConfig().makeApiClient(CoreV1Api);
    for (const name of [operatorNamespace, clusterNamespace, 'team-a']) {
      await hostCore.createNamespace({ body: { metadata: { name } } });
    }
    await targetCore().createNamespace({ body: { metadata: { name: operatorNamespace } } });
    // DPF v24.10 writes the admin kubeconfig under admin.conf.
    await registerDpuCluster(env.hostConfig(), env.target, { name: clusterNamespace, namespace: clusterNamespace, kubeconfigKey: 'admin.conf' });
    // The chart's RBAC as a default install makes it: the user ClusterRoles, no grant.
    await createObjects(env.hostConfig(), await rendered(['templates/rbac.yaml']));
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('without the value, refuses the operator-shaped request: ReferenceNotPermitted naming the grant, nothing made in the DPU cluster', async function () {
    await env.createRequest('ovn-dpu', operatorShapedSpec('ovn-dpu'), { namespace: operatorNamespace });
    await env.driver.reconcile(operatorNamespace, 'ovn-dpu');
    const refused = await ready(operatorNamespace, 'ovn-dpu');
    expect(refused).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    expect(refused?.message).to.contain(`RoleBinding in namespace ${clusterNamespace}`).and.to.contain(`group system:serviceaccounts:${operatorNamespace}`);
    expect(await readSecret(env.hostConfig(), 'ovn-dpu', operatorNamespace)).to.equal(undefined);
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: operatorNamespace, name: 'ovn-dpu' }))).to.equal(404);
  });

  it('refuses it at apply too (deploy/admission/references.yaml), until the value\'s grant exists', async function () {
    await createObjects(env.hostConfig(), await readManifests(referencesPolicy));
    // The policy takes effect once the API server has loaded it; requests admitted until then stay.
    let probes = 0;
    await eventually(async () => {
      const probe = `probe-${probes++}`;
      return (await refusal(probe, operatorShapedSpec(probe)))?.code === 403;
    }, 'the ValidatingAdmissionPolicy refuses the request', { intervalMs: 100 });
    expect(String((await refusal('refused-at-apply', operatorShapedSpec('refused-at-apply')))?.body))
      .to.contain(`may not use DPUCluster ${clusterNamespace}/${clusterNamespace}`);
  });

  it('with dpf.operatorNamespace alone, admits it at apply and makes it Ready: a 24h token for the ServiceAccount in dpf-operator-system of the DPU cluster', async function () {
    const grant = await rendered(['templates/dpf-grants.yaml'], ['--set', `dpf.operatorNamespace=${operatorNamespace}`]);
    expect(grant.map((object) => object.kind)).to.deep.equal(['ClusterRole', 'ClusterRoleBinding']);
    await createObjects(env.hostConfig(), grant);

    // The request refused before turns Ready at its next sync.
    await env.driver.reconcile(operatorNamespace, 'ovn-dpu');
    const granted = await ready(operatorNamespace, 'ovn-dpu');
    expect(granted, granted?.message).to.include({ status: 'True' });
    const secret = (await readSecret(env.hostConfig(), 'ovn-dpu', operatorNamespace))!;
    expect(Object.keys(secret.data ?? {}).sort()).to.deep.equal(['KUBERNETES_CA_DATA', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'TOKEN_FILE']);
    expect(secret.metadata?.labels).to.include({ 'dpu.nvidia.com/image-pull-secret': '' });
    expect(decode(secret, 'KUBERNETES_CA_DATA')).to.equal(env.target.pki.caCertPem);
    expect(await identityOn(env.target, tokenIn(secret))).to.equal(`system:serviceaccount:${operatorNamespace}:ovn-dpu`);
    const status = (await env.driver.readParent(operatorNamespace, 'ovn-dpu'))!.status!;
    expect(Date.parse(status.expirationTimestamp!) - Date.parse(status.issuedAt!)).to.be.closeTo(24 * 3600_000, 60_000);

    // A new one is admitted at apply (the policy asks the same question) and Ready at once.
    await env.createRequest('dpu-cplane-tenant1-creds', operatorShapedSpec('dpu-cplane-tenant1-creds'), { namespace: operatorNamespace });
    await env.driver.reconcile(operatorNamespace, 'dpu-cplane-tenant1-creds');
    expect(await ready(operatorNamespace, 'dpu-cplane-tenant1-creds')).to.include({ status: 'True' });
  });

  it('reaches DPUClusters only: not another namespace of the DPU cluster, not host ServiceAccounts elsewhere, not for requests of other namespaces', async function () {
    // DPF's e2e shape: a ServiceAccount in "default" of the DPU cluster needs targetnamespaces/default.
    expect(String((await refusal('in-default', operatorShapedSpec('in-default', 'default')))?.body))
      .to.contain(`may not use namespace default of DPUCluster ${clusterNamespace}/${clusterNamespace}`);
    // Host mode: a ServiceAccount in another host namespace needs `use` on serviceaccounts there.
    expect((await refusal('host-elsewhere', {
      serviceAccount: { name: 'host-elsewhere', namespace: clusterNamespace }, type: 'tokenFile', secret: { name: 'host-elsewhere' },
    }))?.code).to.equal(403);
    // The grant is the operator namespace's requests', not every namespace's.
    expect(String((await refusal('team-a-creds', { ...operatorShapedSpec('team-a-creds', 'team-a'), secret: { name: 'team-a-creds' } }, 'team-a'))?.body))
      .to.contain(`may not use DPUCluster ${clusterNamespace}/${clusterNamespace}`).and.to.contain('group system:serviceaccounts:team-a');
  });
});
