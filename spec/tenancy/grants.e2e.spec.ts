// Tenant boundaries on real API servers: a request may reach another namespace's DPUCluster
// (or, in host mode, make ServiceAccounts there) only with a grant from that namespace, a
// RoleBinding giving verb `use`. Enforced by the webhook at every sync, and at apply by the
// shipped ValidatingAdmissionPolicy.
import { CoreV1Api, CustomObjectsApi, RbacAuthorizationV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type { DpuServiceCredentialRequestStatus } from '../../server/api.js';
import { bindingOf } from '../../server/kube/tokens.js';
import { dpuClusterApi, registerDpuCluster } from '../../harness/dpucluster.js';
import { bindClusterRole, grantTargetNamespaces } from '../../harness/grants.js';
import { eventsOnceRecorded, stripLabelsAndOwners } from '../../harness/tampering.js';
import { eventually } from '../../harness/eventually.js';
import { apiErrorCode, condition, createObjects, readManifests } from '../../harness/kube-helpers.js';
import { identityAfterAuthCache, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, parentApi, WebhookEnv } from '../../harness/webhook-env.js';

const deploy = (path: string) => fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));

describe('tenant boundaries: cross-namespace references need a grant (real API servers)', function () {
  let env: WebhookEnv;
  let counter = 0;
  const tenant = 'team-a';
  const fresh = () => `grant-${++counter}`;
  const crossNamespaceSpec = (name: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', type: 'kubeconfig', secret: { name: `${name}-cred` },
    targetCluster: { name: 'dpu-cplane-tenant1', namespace: 'default' },
  });
  const rbac = () => env.hostConfig().makeApiClient(RbacAuthorizationV1Api);
  const grant = (name: string) => rbac().createNamespacedRoleBinding({
    namespace: 'default',
    body: {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'dpu-credential-user' },
      subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${tenant}` }],
    },
  });
  const withdraw = (name: string) => rbac().deleteNamespacedRoleBinding({ namespace: 'default', name });
  const parent = (name: string) => env.driver.readParent(tenant, name);
  const onTarget = (token: string) => identityOn(env.target, token);

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    await env.hostConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: tenant } } });
    // The ServiceAccount lands in the request's namespace of the DPU cluster.
    await env.target.adminKubeConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: tenant } } });
    const clusterRoles = (await readManifests(deploy('rbac.yaml')))
      .filter((object: KubernetesObject) => object.kind === 'ClusterRole' && object.metadata?.name?.startsWith('dpu-credential-') && object.metadata.name !== 'dpu-credential-webhook');
    await createObjects(env.hostConfig(), clusterRoles);
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it('refuses a DPUCluster in another namespace without a grant: ReferenceNotPermitted naming the grant, nothing made or minted', async function () {
    const name = fresh();
    await env.createRequest(name, crossNamespaceSpec(name), { namespace: tenant });
    await env.driver.reconcile(tenant, name);
    const ready = condition(await parent(name), 'Ready');
    expect(ready).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    expect(ready?.message).to.contain('RoleBinding in namespace default').and.to.contain('group system:serviceaccounts:team-a');
    expect(await readSecret(env.hostConfig(), `${name}-cred`, tenant)).to.equal(undefined);
    const targetCore = env.target.adminKubeConfig().makeApiClient(CoreV1Api);
    expect(await apiErrorCode(targetCore.readNamespacedServiceAccount({ namespace: 'default', name: `${name}-sa` }))).to.equal(404);
  });

  it('mints once the DPUCluster\'s namespace grants it, and drops the Secret and revokes the token when the grant is withdrawn', async function () {
    this.timeout(60_000);
    const name = fresh();
    await grant(name);
    await env.createRequest(name, crossNamespaceSpec(name), { namespace: tenant });
    await env.driver.reconcile(tenant, name);
    const ready = condition(await parent(name), 'Ready');
    expect(ready, ready?.message).to.include({ status: 'True' });
    const token = tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, tenant))!);
    expect(await onTarget(token)).to.equal(`system:serviceaccount:${tenant}:${name}-sa`);

    await withdraw(name);
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    expect(await readSecret(env.hostConfig(), `${name}-cred`, tenant)).to.equal(undefined);
    expect((await parent(name))?.status?.previousTokensRevokedAt).to.be.a('string');
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
  });

  it('refuses, in host mode, a ServiceAccount in another namespace without a grant', async function () {
    const name = fresh();
    await env.createRequest(name, {
      serviceAccount: { name: `${name}-sa`, namespace: 'kube-system' }, type: 'tokenFile', secret: { name: `${name}-cred` },
    }, { namespace: tenant });
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    const hostCore = env.hostConfig().makeApiClient(CoreV1Api);
    expect(await apiErrorCode(hostCore.readNamespacedServiceAccount({ namespace: 'kube-system', name: `${name}-sa` }))).to.equal(404);
  });

  const targetCore = () => env.target.adminKubeConfig().makeApiClient(CoreV1Api);
  const hostCore = () => env.hostConfig().makeApiClient(CoreV1Api);
  /** The status as written, replaced by hand: what Metacontroller's lagging cache, or a made-up hook call, may hand the webhook. */
  const replaceStatus = async (name: string, change: (status: DpuServiceCredentialRequestStatus) => void) => {
    const objects = env.hostConfig().makeApiClient(CustomObjectsApi);
    const current = await parent(name);
    const status = structuredClone(current?.status ?? {});
    change(status);
    await objects.replaceNamespacedCustomObjectStatus({ ...parentApi, namespace: tenant, name, body: { ...current, status } });
  };
  const anchorOf = (token: string) => bindingOf(token).anchor!;
  /** A request of the tenant on the default namespace's DPUCluster, granted and Ready: its token, and how to withdraw the grant. */
  const grantedRequest = async (name: string) => {
    const withdraw = await bindClusterRole(env.hostConfig(), 'default', 'dpu-credential-user', tenant, name);
    await env.createRequest(name, crossNamespaceSpec(name), { namespace: tenant });
    await env.driver.reconcile(tenant, name);
    return { withdraw, token: tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, tenant))!) };
  };

  it('never makes or mints for a ServiceAccount in a protected namespace, whatever is granted (target kube-system, host kube-system)', async function () {
    const name = fresh();
    const withdrawAll = await bindClusterRole(env.hostConfig(), 'default', 'dpu-credential-target-namespaces', 'default', `${name}-all`);
    try {
      await env.createRequest(name, {
        serviceAccount: { name: 'token-cleaner', namespace: 'kube-system' }, type: 'tokenFile', secret: { name: `${name}-cred` },
        targetCluster: { name: 'dpu-cplane-tenant1' },
      });
      await env.driver.reconcile('default', name);
      const ready = condition(await env.driver.readParent('default', name), 'Ready');
      expect(ready).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
      expect(ready?.message).to.contain('namespace kube-system of DPUCluster default/dpu-cplane-tenant1 is protected');
      expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'kube-system', name: 'token-cleaner' }))).to.equal(404);
    } finally {
      await withdrawAll();
    }
    const hostName = fresh();
    await env.createRequest(hostName, {
      serviceAccount: { name: 'bootstrap-signer', namespace: 'kube-system' }, type: 'tokenFile', secret: { name: `${hostName}-cred` },
    }, { namespace: 'kube-system' });
    await env.driver.reconcile('kube-system', hostName);
    expect(condition(await env.driver.readParent('kube-system', hostName), 'Ready')?.message).to.contain('namespace kube-system of the host cluster is protected');
    expect(await apiErrorCode(hostCore().readNamespacedServiceAccount({ namespace: 'kube-system', name: 'bootstrap-signer' }))).to.equal(404);
  });

  it('reaches another namespace of a DPUCluster\'s cluster only where the DPUCluster\'s namespace grants it by name', async function () {
    this.timeout(60_000);
    for (const namespace of ['tenant-extra', 'tenant-other']) {
      await targetCore().createNamespace({ body: { metadata: { name: namespace } } });
    }
    const request = (name: string, namespace: string) => env.createRequest(name, {
      serviceAccount: { name: `${name}-sa`, namespace }, duration: '1h', type: 'kubeconfig', secret: { name: `${name}-cred` },
      targetCluster: { name: 'dpu-cplane-tenant1' },
    });
    const refused = fresh();
    await request(refused, 'tenant-extra');
    await env.driver.reconcile('default', refused);
    expect(condition(await env.driver.readParent('default', refused), 'Ready')?.message)
      .to.contain('may not use namespace tenant-extra of DPUCluster default/dpu-cplane-tenant1')
      .and.to.contain('targetnamespaces/tenant-extra');
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'tenant-extra', name: `${refused}-sa` }))).to.equal(404);

    const withdraw = await grantTargetNamespaces(env.hostConfig(), 'default', 'default', ['tenant-extra'], `${refused}-grant`);
    await env.driver.reconcile('default', refused);
    expect(condition(await env.driver.readParent('default', refused), 'Ready')).to.include({ status: 'True' });
    const other = fresh();
    await request(other, 'tenant-other');
    await env.driver.reconcile('default', other);
    expect(condition(await env.driver.readParent('default', other), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });

    const token = tokenIn((await readSecret(env.hostConfig(), `${refused}-cred`))!);
    await withdraw();
    await env.driver.reconcile('default', refused);
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'tenant-extra', name: `${refused}-sa` }))).to.equal(404);
  });

  it('revokes at withdrawal even when the spec was made invalid while granted (a frozen spec)', async function () {
    this.timeout(60_000);
    const name = fresh();
    const { withdraw, token } = await grantedRequest(name);
    await env.updateRequest(name, (r) => {
      (r.spec as { secret: { namespace?: string } }).secret.namespace = 'other';
    }, tenant);
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ reason: 'InvalidSpec' });
    expect(await onTarget(token)).to.equal(`system:serviceaccount:${tenant}:${name}-sa`);

    await withdraw();
    await env.driver.syncOnce(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    // Everything taken back, the request is only invalid from then on.
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'False', reason: 'InvalidSpec' });
    expect(await readSecret(env.hostConfig(), `${name}-cred`, tenant)).to.equal(undefined);
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: tenant, name: `${name}-sa` }))).to.equal(404);
  });

  it('revokes at withdrawal the anchor and ServiceAccount of a token the status lost (read from the observed Secret)', async function () {
    this.timeout(60_000);
    const name = fresh();
    const { withdraw, token } = await grantedRequest(name);
    const anchor = anchorOf(token);
    expect((await targetCore().readNamespacedSecret({ namespace: tenant, name: anchor })).type).to.equal('svc.dpu.nvidia.com/token-anchor');
    await replaceStatus(name, (status) => {
      delete status.tokenAnchors;
      delete status.serviceAccounts;
      delete status.serviceAccount;
    });

    await withdraw();
    await env.driver.syncOnce(tenant, name);
    expect(await apiErrorCode(targetCore().readNamespacedSecret({ namespace: tenant, name: anchor }))).to.equal(404);
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: tenant, name: `${name}-sa` }))).to.equal(404);
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
  });

  it('revokes at withdrawal a token whose holder stripped the labels of its anchor and ServiceAccount: both deleted by UID, with Warnings', async function () {
    this.timeout(60_000);
    const name = fresh();
    const { withdraw, token } = await grantedRequest(name);
    await stripLabelsAndOwners(env.target.adminKubeConfig(), 'secrets', tenant, anchorOf(token));
    await stripLabelsAndOwners(env.target.adminKubeConfig(), 'serviceaccounts', tenant, `${name}-sa`);

    await withdraw();
    await env.driver.syncOnce(tenant, name);
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
    expect(await apiErrorCode(targetCore().readNamespacedSecret({ namespace: tenant, name: anchorOf(token) }))).to.equal(404);
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: tenant, name: `${name}-sa` }))).to.equal(404);
    const events = await eventsOnceRecorded(env.hostConfig(), tenant, name, 'Warning/ServiceAccountTampered');
    expect(events.map((event) => `${event.type}/${event.reason}`)).to.include('Warning/AnchorTampered');
    expect(condition(await parent(name), 'ServiceAccountReconciled')?.message).to.contain('tampering');
  });

  it('revokes at withdrawal in a DPUCluster deleted and recreated under the same name (a new UID, the same API server)', async function () {
    this.timeout(60_000);
    const name = fresh();
    const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `${name}-cluster` });
    const withdraw = await bindClusterRole(env.hostConfig(), 'default', 'dpu-credential-user', tenant, name);
    await env.createRequest(name, { ...crossNamespaceSpec(name), targetCluster: { name: cluster.name, namespace: 'default' } }, { namespace: tenant });
    await env.driver.reconcile(tenant, name);
    const token = tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, tenant))!);
    expect(await onTarget(token)).to.equal(`system:serviceaccount:${tenant}:${name}-sa`);

    // A backup restore or a GitOps re-sync: the same DPUCluster and kubeconfig, a new UID.
    await env.hostConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name: cluster.name });
    await hostCore().deleteNamespacedSecret({ namespace: 'default', name: cluster.kubeconfigSecretName });
    const restored = await registerDpuCluster(env.hostConfig(), env.target, { name: cluster.name });
    expect(restored.uid).to.not.equal(cluster.uid);
    await env.clusters.host.dpuClusters!.until((cache) => cache.lookup('default', cluster.name)?.metadata?.uid === restored.uid);

    await withdraw();
    await env.driver.syncOnce(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
    expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: tenant, name: `${name}-sa` }))).to.equal(404);
  });

  it('turns Ready again once a refused request asks only for what it may (nothing read back from the refused status as still held)', async function () {
    this.timeout(60_000);
    const name = fresh();
    const { withdraw } = await grantedRequest(name);
    await withdraw();
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ reason: 'ReferenceNotPermitted' });
    // Host mode, in its own namespace: needs no grant.
    await env.updateRequest(name, (r) => {
      delete (r.spec as { targetCluster?: unknown }).targetCluster;
    }, tenant);
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'True' });
    expect(await identityOn(env.host, tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, tenant))!)))
      .to.equal(`system:serviceaccount:${tenant}:${name}-sa`);
  });

  it('deletes only anchors this request made: a Secret the status names as an anchor but that is not one survives', async function () {
    this.timeout(60_000);
    const name = fresh();
    const { withdraw } = await grantedRequest(name);
    try {
      await targetCore().createNamespacedSecret({ namespace: tenant, body: { metadata: { name: `${name}-victim` }, type: 'Opaque', data: { key: 'dmFsdWU=' } } });
      await replaceStatus(name, (status) => {
        const [own] = status.tokenAnchors ?? [];
        status.tokenAnchors = [...status.tokenAnchors ?? [], { ...own!, anchor: `${name}-victim`, expiresAt: '2020-01-01T00:00:00Z' }];
      });
      await env.driver.reconcile(tenant, name);
      expect((await targetCore().readNamespacedSecret({ namespace: tenant, name: `${name}-victim` })).data).to.deep.equal({ key: 'dmFsdWU=' });
      expect((await parent(name))?.status?.tokenAnchors?.map((entry) => entry.anchor)).to.not.include(`${name}-victim`);
    } finally {
      await withdraw();
    }
  });

  describe('at kubectl apply (deploy/admission/references.yaml on the real API server)', function () {
    before(async function () {
      this.timeout(60_000);
      await createObjects(env.hostConfig(), await readManifests(deploy('admission/references.yaml')));
      // The policy takes effect once the API server has loaded it.
      let probes = 0;
      await eventually(async () => {
        const probe = `vap-probe-${probes++}`;
        const code = await env.createRequest(probe, crossNamespaceSpec(probe), { namespace: tenant }).then(() => 0, (error: { code?: number }) => error.code ?? -1);
        if (code === 0) await env.deleteRequest(probe, tenant);
        return code !== 0;
      }, 'the ValidatingAdmissionPolicy refuses a request', { intervalMs: 100 });
    });

    it('refuses a request that references another namespace\'s DPUCluster without a grant, naming the grant', async function () {
      const name = fresh();
      const error = await env.createRequest(name, crossNamespaceSpec(name), { namespace: tenant }).then(() => undefined, (e: { code?: number; body?: unknown }) => e);
      expect(error?.code).to.equal(403);
      expect(String(error?.body)).to.contain('may not use DPUCluster default/dpu-cplane-tenant1')
        .and.to.contain('group system:serviceaccounts:team-a');
    });

    it('admits it once granted, and still admits same-namespace requests and Metacontroller\'s updates after the grant is gone', async function () {
      const name = fresh();
      await grant(name);
      await env.createRequest(name, crossNamespaceSpec(name), { namespace: tenant });
      await env.createRequest(`${name}-own`, { ...crossNamespaceSpec(`${name}-own`), targetCluster: { name: 'dpu-cplane-tenant1' } });
      await withdraw(name);
      // The finalizer Metacontroller adds (and later removes) is an update that must pass.
      await env.updateRequest(name, (r) => {
        r.metadata!.finalizers = ['example.com/keep'];
      }, tenant);
      const code = await apiErrorCode(env.updateRequest(name, (r) => {
        (r.spec as { duration: string }).duration = '2h';
      }, tenant));
      expect(code).to.equal(403);
      await env.updateRequest(name, (r) => {
        r.metadata!.finalizers = [];
      }, tenant);
    });
  
    const createCode = (name: string, spec: Record<string, unknown>, namespace: string) =>
      env.createRequest(name, spec, { namespace }).then(() => 0, (error: { code?: number }) => error.code ?? -1);

    it('refuses a protected namespace, and another namespace of the DPUCluster\'s cluster without its grant, naming them', async function () {
      const name = fresh();
      const error = await env.createRequest(name, { ...crossNamespaceSpec(name), targetCluster: { name: 'dpu-cplane-tenant1' },
        serviceAccount: { name: 'x', namespace: 'kube-system' } }).then(() => undefined, (e: { code?: number; body?: unknown }) => e);
      expect(error?.code).to.equal(403);
      expect(String(error?.body)).to.contain('namespace kube-system is protected');
      const other = fresh();
      const refused = await env.createRequest(other, { ...crossNamespaceSpec(other), targetCluster: { name: 'dpu-cplane-tenant1' },
        serviceAccount: { name: 'x', namespace: 'elsewhere' } }).then(() => undefined, (e: { code?: number; body?: unknown }) => e);
      expect(refused?.code).to.equal(403);
      expect(String(refused?.body)).to.contain('may not use namespace elsewhere of DPUCluster default/dpu-cplane-tenant1')
        .and.to.contain('targetnamespaces/elsewhere');
      const withdraw = await grantTargetNamespaces(env.hostConfig(), 'default', 'default', ['elsewhere'], `${other}-grant`);
      try {
        expect(await createCode(other, { ...crossNamespaceSpec(other), targetCluster: { name: 'dpu-cplane-tenant1' },
          serviceAccount: { name: 'x', namespace: 'elsewhere' } }, 'default')).to.equal(0);
      } finally {
        await withdraw();
      }
    });

    it('asks the same question at apply and at sync: a grant to system:authenticated passes at neither', async function () {
      const name = fresh();
      const authenticated = { kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'system:authenticated' };
      const withdraw = await bindClusterRole(env.hostConfig(), 'default', 'dpu-credential-user', tenant, name, authenticated);
      try {
        expect(await createCode(name, crossNamespaceSpec(name), tenant)).to.equal(403);
        // The same spec handed to the hook directly (as a lagging or bypassed admission would): refused too.
        const { status } = await fetch(`${env.plainUrl}/sync`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            controller: {}, finalizing: false, children: {}, related: {},
            parent: { apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest',
              metadata: { name, namespace: tenant, uid: 'made-up', generation: 1 }, spec: crossNamespaceSpec(name) },
          }),
        }).then(async (response) => ({ status: response.status, body: await response.json() as { status?: DpuServiceCredentialRequestStatus } }))
          .then(({ status: code, body }) => ({ status: code === 200 ? body.status : undefined }));
        expect(status?.conditions?.find((c) => c.type === 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
        expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: tenant, name: `${name}-sa` }))).to.equal(404);
      } finally {
        await withdraw();
      }
    });
  });
});
