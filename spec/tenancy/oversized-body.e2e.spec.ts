// Issue 24 point 1 on real API servers: a tenant that pads its request's hook body (Secrets of
// its namespace labelled with the request's controller-uid, created in one burst, which
// Metacontroller adopts as children and sends in every body) cannot freeze revocation. The
// body is over MAX_BODY_BYTES (1 MiB here); the parent, sent before the children, is read, and
// the sync answers a refusal that revokes everything; finalize completes as it would.
import { CoreV1Api, type KubernetesObject } from '@kubernetes/client-node';
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { bindClusterRole } from '../../harness/grants.js';
import { apiErrorCode, condition, createObjects, readManifests } from '../../harness/kube-helpers.js';
import { identityAfterAuthCache, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

const deploy = (path: string) => fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));

describe('a padded hook body does not freeze revocation (real API servers, issue 24 point 1)', function () {
  let env: WebhookEnv;
  const tenant = 'team-pad';
  const crossNamespaceSpec = (name: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', type: 'kubeconfig', secret: { name: `${name}-cred` },
    targetCluster: { name: 'dpu-cplane-tenant1', namespace: 'default' },
  });
  const parent = (name: string) => env.driver.readParent(tenant, name);
  const hostCore = () => env.hostConfig().makeApiClient(CoreV1Api);
  const padNames = (name: string) => [1, 2, 3, 4, 5, 6].map((n) => `${name}-pad-${n}`);

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    await hostCore().createNamespace({ body: { metadata: { name: tenant } } });
    await env.target.adminKubeConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: tenant } } });
    const clusterRoles = (await readManifests(deploy('rbac.yaml')))
      .filter((object: KubernetesObject) => object.kind === 'ClusterRole' && object.metadata?.name === 'dpu-credential-user');
    await createObjects(env.hostConfig(), clusterRoles);
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  /** A granted cross-namespace request, Ready: its token, its UID and how to withdraw the grant. */
  const grantedRequest = async (name: string) => {
    const withdraw = await bindClusterRole(env.hostConfig(), 'default', 'dpu-credential-user', tenant, name);
    await env.createRequest(name, crossNamespaceSpec(name), { namespace: tenant });
    await env.driver.reconcile(tenant, name);
    const ready = condition(await parent(name), 'Ready');
    expect(ready, ready?.message).to.include({ status: 'True' });
    const token = tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, tenant))!);
    expect(await identityOn(env.target, token)).to.equal(`system:serviceaccount:${tenant}:${name}-sa`);
    return { withdraw, token, uid: (await parent(name))!.metadata!.uid! };
  };

  /**
   * Six Secrets of 750 kB (base64) labelled with the request's controller-uid, in one burst, as the tenant could
   * (the admission policy is not installed here). `adopted`: already the request's children, as Metacontroller
   * leaves them when it adopted them for a sync that failed (it adopts nothing for a request being deleted).
   */
  const pad = async (name: string, uid: string, adopted = false) => {
    const data = { pad: Buffer.alloc(562_500, 7).toString('base64') };
    const ownerReferences = adopted
      ? [{ apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', name, uid, controller: true, blockOwnerDeletion: true }] : undefined;
    await Promise.all(padNames(name).map((padName) => hostCore().createNamespacedSecret({
      namespace: tenant, body: { metadata: { name: padName, labels: { 'controller-uid': uid }, ...(ownerReferences ? { ownerReferences } : {}) }, data },
    })));
  };

  it('answers a padded sync after the grant is withdrawn with HookBodyTooLarge, revokes the token, and Metacontroller deletes the padding', async function () {
    this.timeout(90_000);
    const name = 'padded-sync';
    const { withdraw, token, uid } = await grantedRequest(name);
    await pad(name, uid);
    await withdraw();

    await env.driver.syncOnce(tenant, name);
    // The body the driver sent was over the webhook's limit (1 MiB), and was answered with 200.
    expect(Buffer.byteLength(env.driver.lastHookRequest)).to.be.greaterThan(4_000_000);
    expect(env.driver.calls.at(-1)).to.include({ hook: 'sync', statusCode: 200 });
    const ready = condition(await parent(name), 'Ready');
    expect(ready).to.include({ status: 'False', reason: 'HookBodyTooLarge' });
    expect(ready?.message).to.match(new RegExp(`Secret ${tenant}/${name}-pad-\\d \\(75\\d kB\\)`))
    expect(ready?.message).and.contain(`controller-uid=${uid}`)
      .and.contain('They do not now');
    expect((await parent(name))?.status?.previousTokensRevokedAt).to.be.a('string');
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
    // The answer listed no children: Metacontroller deleted the adopted padding and the output Secret.
    for (const gone of [...padNames(name), `${name}-cred`]) expect(await readSecret(env.hostConfig(), gone, tenant), gone).to.equal(undefined);

    // The next body is under the limit: the grant refusal as usual.
    await env.driver.reconcile(tenant, name);
    expect(condition(await parent(name), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
  });

  it('refuses a padded sync while still granted too (the children cannot be read), and the next sync, the padding gone, mints a new token', async function () {
    this.timeout(90_000);
    const name = 'padded-granted';
    const { token, uid } = await grantedRequest(name);
    await pad(name, uid);

    await env.driver.syncOnce(tenant, name);
    const refused = condition(await parent(name), 'Ready');
    expect(refused).to.include({ status: 'False', reason: 'HookBodyTooLarge' });
    expect(refused?.message).to.not.contain('They do not now');
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);

    await env.driver.reconcile(tenant, name);
    const ready = condition(await parent(name), 'Ready');
    expect(ready, ready?.message).to.include({ status: 'True' });
    const renewed = tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, tenant))!);
    expect(renewed).to.not.equal(token);
    expect(await identityOn(env.target, renewed)).to.equal(`system:serviceaccount:${tenant}:${name}-sa`);
  });

  it('finalizes a padded request being deleted: its ServiceAccount is deleted and the request goes', async function () {
    this.timeout(90_000);
    const name = 'padded-finalize';
    const { token, uid } = await grantedRequest(name);
    await pad(name, uid, true);
    await env.deleteRequest(name, tenant);

    await env.driver.reconcile(tenant, name);
    expect(Buffer.byteLength(env.driver.lastHookRequest)).to.be.greaterThan(4_000_000);
    expect(env.driver.calls.filter((call) => call.hook === 'finalize').at(-1)).to.include({ statusCode: 200 });
    expect(await parent(name)).to.equal(undefined);
    const targetCore = env.target.adminKubeConfig().makeApiClient(CoreV1Api);
    expect(await apiErrorCode(targetCore.readNamespacedServiceAccount({ namespace: tenant, name: `${name}-sa` }))).to.equal(404);
    expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
  });
});
