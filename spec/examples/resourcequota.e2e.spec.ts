// examples/resourcequota.yaml on a real API server: the ResourceQuota admission plugin
// counts DPUServiceCredentialRequests per namespace and refuses the one past the limit.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type { KubernetesObject } from '@kubernetes/client-node';
import { KubeApiError, KubeRestClient } from '../../server/kube/rest.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { createObjects, readManifests } from '../../harness/kube-helpers.js';
import { controlPlaneStartTimeoutMs, requestCrdPath } from '../../harness/webhook-env.js';
import { eventually } from '../../harness/eventually.js';
import { connectionOf } from '../../harness/connection.js';

const examplePath = fileURLToPath(new URL('../../examples/resourcequota.yaml', import.meta.url));
const countedResource = 'count/dpuservicecredentialrequests.svc.dpu.nvidia.com';

interface ResourceQuota extends KubernetesObject {
  spec: { hard: Record<string, string> };
  status?: { hard?: Record<string, string>; used?: Record<string, string> };
}

describe('examples/resourcequota.yaml: a quota on DPUServiceCredentialRequests per namespace (real API server)', function () {
  const namespace = 'quota-team';
  let plane: ControlPlane;
  let client: KubeRestClient;
  let quota: ResourceQuota;

  const requestsPath = (ns: string) => `/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/${ns}/dpuservicecredentialrequests`;
  const quotaPath = () => `/api/v1/namespaces/${namespace}/resourcequotas/${quota.metadata!.name!}`;
  const create = async (name: string, ns = namespace): Promise<KubeApiError | undefined> => {
    try {
      await client.request('POST', requestsPath(ns), {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
        spec: { serviceAccount: { name: `${name}-sa` }, type: 'kubeconfig', secret: { name: `${name}-cred` } },
      });
      return undefined;
    } catch (error) {
      if (error instanceof KubeApiError) return error;
      throw error;
    }
  };
  const used = async () => (await client.request<ResourceQuota>('GET', quotaPath())).status?.used?.[countedResource];

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'quota' });
    const admin = plane.adminKubeConfig();
    await createObjects(admin, await readManifests(requestCrdPath));
    client = new KubeRestClient(connectionOf(admin), { timeoutMs: 10_000 });
    await client.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });

    const [example] = await readManifests(examplePath) as ResourceQuota[];
    quota = { ...example!, metadata: { ...example!.metadata, namespace } };
    await createObjects(admin, [quota]);
    // The test control plane runs no kube-controller-manager, whose quota controller would
    // write the first status; the admission plugin refuses everything until one exists
    // ("status unknown for quota") and then counts from it. So the test writes it.
    const created = await client.request<ResourceQuota>('GET', quotaPath());
    await client.request('PUT', `${quotaPath()}/status`, {
      ...created, status: { hard: quota.spec.hard, used: { [countedResource]: '0' } },
    });
  });

  after(async function () {
    client?.close();
    await plane?.stop();
  });

  it('creates the requests under the limit and refuses the one past it with 403 and the quota\'s message', async function () {
    this.timeout(60_000);
    const limit = Number(quota.spec.hard[countedResource]);
    expect(limit).to.be.above(0);

    // The admission plugin reads quotas from an informer: the first request may come before
    // it has the status. Counted (used 1) means the quota is in force.
    const unexpected: Error[] = [];
    await eventually(async () => {
      const refused = await create('request-1');
      if (!refused && (await used()) === '1') return true;
      if (refused && !(refused.statusCode === 403 && refused.message.includes('status unknown for quota'))) {
        unexpected.push(refused);
        return true;
      }
      if (!refused) await client.request('DELETE', `${requestsPath(namespace)}/request-1`);
      return false;
    }, 'the quota is in force', { intervalMs: 100 });
    if (unexpected[0]) throw unexpected[0];
    for (let i = 2; i <= limit; i++) expect(await create(`request-${i}`), `request-${i}`).to.equal(undefined);

    const refused = await create(`request-${limit + 1}`);
    expect(refused?.statusCode).to.equal(403);
    expect(refused?.message).to.contain(`exceeded quota: ${quota.metadata!.name}`)
      .and.to.contain(`requested: ${countedResource}=1, used: ${countedResource}=${limit}, limited: ${countedResource}=${limit}`);

    const listed = await client.request<{ items: KubernetesObject[] }>('GET', requestsPath(namespace));
    expect(listed.items.map((item) => item.metadata?.name).sort()).to.deep.equal(
      Array.from({ length: limit }, (_, i) => `request-${i + 1}`).sort());
    expect(await used()).to.equal(String(limit));
  });

  it('counts per namespace: another namespace is not limited by it', async function () {
    expect(await create('elsewhere', 'default')).to.equal(undefined);
  });
});
