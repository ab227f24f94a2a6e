// deploy/admission/metacontroller-finalizer.yaml on the real API server (Kubernetes 1.36: the
// MutatingAdmissionPolicy API is GA): the finalizer Metacontroller would add is there from the
// create on, so the driver, which skips finalizer.SyncObject's GET and PUT when its cached
// parent already has it, spends 5 API calls on a new request instead of 7, and deletion still
// runs the finalize hook and completes.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import { finalizerPolicyPath, installFinalizerPolicy } from '../../harness/finalizer-policy.js';
import { readManifests } from '../../harness/kube-helpers.js';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { controlPlaneStartTimeoutMs, parentApi, WebhookEnv } from '../../harness/webhook-env.js';

describe('the Metacontroller finalizer added at create (deploy/admission/metacontroller-finalizer.yaml, real API servers)', function () {
  let env: WebhookEnv;
  let counter = 0;
  const fresh = () => `fin-${++counter}`;
  const spec = (name: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: 'dpu-cplane-tenant1' }, type: 'kubeconfig',
    secret: { name: `${name}-cred` },
  });
  const objects = () => env.hostConfig().makeApiClient(CustomObjectsApi);
  const read = async (name: string) => await objects().getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }) as DpuServiceCredentialRequest;
  const create = async (name: string, finalizers?: string[]) => await objects().createNamespacedCustomObject({
    ...parentApi, namespace: 'default',
    body: { apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name, ...(finalizers ? { finalizers } : {}) }, spec: spec(name) },
  }) as DpuServiceCredentialRequest;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    const manifests = await readManifests(finalizerPolicyPath);
    expect(manifests.map((object) => object.kind)).to.deep.equal(['MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding']);
    await installFinalizerPolicy(env.hostConfig(), env.driver.finalizer);
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it('names the finalizer the driver derives from the shipped CompositeController', function () {
    expect(env.driver.finalizer).to.equal('metacontroller.io/compositecontroller-dpuservicecredentialrequest-controller');
  });

  it('adds it once at create, beside finalizers the request already has, and never twice', async function () {
    const plain = fresh();
    expect((await create(plain)).metadata?.finalizers).to.deep.equal([env.driver.finalizer]);
    const withOther = fresh();
    expect((await create(withOther, ['example.com/keep'])).metadata?.finalizers).to.have.members(['example.com/keep', env.driver.finalizer]).and.have.length(2);
    const already = fresh();
    expect((await create(already, [env.driver.finalizer])).metadata?.finalizers).to.deep.equal([env.driver.finalizer]);
    for (const name of [plain, withOther, already]) {
      await env.updateRequest(name, (request) => { request.metadata!.finalizers = []; });
      await env.deleteRequest(name);
    }
  });

  it('does not put it back on an update, so removing it (the end of finalize) lets a deletion complete', async function () {
    const name = fresh();
    await create(name);
    await env.updateRequest(name, (request) => { request.metadata!.finalizers = ['example.com/keep']; });
    expect((await read(name)).metadata?.finalizers).to.deep.equal(['example.com/keep']);
    await env.updateRequest(name, (request) => { request.metadata!.finalizers = []; });
    await env.deleteRequest(name);
    const code = await objects().getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }).then(() => 200, (error: { code?: number }) => error.code);
    expect(code).to.equal(404);
  });

  it('a new request costs Metacontroller 5 API calls (Secret, Pending and Ready status), no finalizer GET and PUT', async function () {
    const name = fresh();
    await env.createRequest(name, spec(name));
    const before = { ...env.driver.api.calls };
    await env.driver.reconcile('default', name);
    const spent = Object.fromEntries(Object.entries(env.driver.api.calls).map(([verb, count]) => [verb, count - (before[verb] ?? 0)]).filter(([, count]) => count));
    // PATCH (the Secret), GET + PUT status twice: Pending, then Ready once the Secret is seen.
    expect(spent).to.deep.equal({ GET: 2, PUT: 2, PATCH: 1 });
    expect((await read(name)).status?.conditions?.find((condition) => condition.type === 'Ready')?.status).to.equal('True');
  });

  it('deletion still runs finalize, which revokes and removes the finalizer, and the request is gone', async function () {
    const name = fresh();
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    const finalizeCalls = () => env.driver.calls.filter((call) => call.hook === 'finalize').length;
    const before = finalizeCalls();
    await env.deleteRequest(name);
    await env.driver.reconcile('default', name);
    expect(finalizeCalls()).to.be.greaterThan(before);
    const code = await objects().getNamespacedCustomObject({ ...parentApi, namespace: 'default', name }).then(() => 200, (error: { code?: number }) => error.code);
    expect(code).to.equal(404);
  });
});
