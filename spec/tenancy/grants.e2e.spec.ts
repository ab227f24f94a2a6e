// Tenant boundaries on real API servers: a request may reach another namespace's DPUCluster
// (or, in host mode, make ServiceAccounts there) only with a grant from that namespace, a
// RoleBinding giving verb `use`. Enforced by the webhook at every sync, and at apply by the
// shipped ValidatingAdmissionPolicy.
import { CoreV1Api, RbacAuthorizationV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { apiErrorCode, condition, createObjects, readManifests } from '../support/kube-helpers.js';
import { identityAfterAuthCache, identityOn, readSecret, tokenIn } from '../support/secrets.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../support/webhook-env.js';

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
    const clusterRoles = (await readManifests(deploy('rbac.yaml'))).filter((object: KubernetesObject) => object.metadata?.name === 'dpu-credential-user');
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

  describe('at kubectl apply (deploy/admission/references.yaml on the real API server)', function () {
    before(async function () {
      this.timeout(60_000);
      await createObjects(env.hostConfig(), await readManifests(deploy('admission/references.yaml')));
      // The policy takes effect once the API server has loaded it.
      for (let attempt = 0; ; attempt++) {
        const probe = `vap-probe-${attempt}`;
        const code = await env.createRequest(probe, crossNamespaceSpec(probe), { namespace: tenant }).then(() => 0, (error: { code?: number }) => error.code ?? -1);
        if (code !== 0) break;
        await env.deleteRequest(probe, tenant);
        if (attempt > 100) throw new Error('the ValidatingAdmissionPolicy did not take effect in 10 s');
        await sleep(100);
      }
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
  });
});
