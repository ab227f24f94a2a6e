// deploy/admission/managed-labels.yaml on real API servers (issue 24 point 3, the host
// cluster): the holder of a leaked token whose Role grants every verb on every resource in its
// namespace may neither strip nor change the labels that mark the anchor Secret and the
// ServiceAccount the webhook made, nor make a token anchor of its own; every other edit still
// passes, and the webhook's own identity may restore the labels. Then the whole flow with the
// webhook calling its host cluster as its ServiceAccount under webhook-identity.yaml and this
// policy: the tenant's attempt to strip the labels fails, and withdrawing the grant revokes
// the token (before this policy, webhook-identity.yaml refused the webhook the deletion of a
// stripped ServiceAccount or anchor, and the token survived).
import { CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { managedLabels } from '../../server/credential/names.js';
import { bindingOf } from '../../server/kube/tokens.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { anchorLabel, anchorSecretType } from '../../server/kube/token-anchors.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { connectionOf } from '../../harness/connection.js';
import { eventually } from '../../harness/eventually.js';
import { bindClusterRole } from '../../harness/grants.js';
import { condition, createObjects, readManifests, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { identityAfterAuthCache, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { stripLabelsAndOwners } from '../../harness/tampering.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';
import { webhookKubeConfig, webhookUser } from '../../harness/webhook-identity.js';
import { expectDeniedBy, refusalOf } from '../../harness/admission-refusals.js';

const deploy = (path: string) => fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));
const policy = 'dpu-credential-managed-labels';
const tenant = 'team-b';
const tenantUser = `system:serviceaccount:${tenant}:tenant`;
const secretsPath = `/api/v1/namespaces/${tenant}/secrets`;
const accountsPath = `/api/v1/namespaces/${tenant}/serviceaccounts`;
const mergePatch = { contentType: 'application/merge-patch+json' };
const allManagedKeys = 'svc.dpu.nvidia.com/managed-by-controller, svc.dpu.nvidia.com/credential-request-name, svc.dpu.nvidia.com/credential-request-namespace';

/** The tenant of `namespace`: a ServiceAccount whose Role there grants every verb on every resource. Its client. */
async function wildcardTenant(plane: ControlPlane, admin: KubeRestClient, namespace: string): Promise<KubeRestClient> {
  await admin.request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tenant' } });
  await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'everything' }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
  });
  await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'everything' },
    subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace }],
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'everything' },
  });
  const minted = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/tenant/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3_600 },
  });
  const config = tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.status.token);
  expect(await whoAmI(config)).to.equal(`system:serviceaccount:${namespace}:tenant`);
  return new KubeRestClient(connectionOf(config), { timeoutMs: 10_000 });
}

/** 200 when `path` is there, else the status of the refused read (404: gone). */
const readStatus = async (client: KubeRestClient, path: string) => (await refusalOf(client.request('GET', path)))?.statusCode ?? 200;

/** Installs webhook-identity.yaml and managed-labels.yaml, and waits until the API server enforces them on `tenant`. */
async function installPolicies(plane: ControlPlane, admin: KubeRestClient, tenantClient: KubeRestClient, namespace: string): Promise<void> {
  await createObjects(plane.adminKubeConfig(), [
    ...await readManifests(deploy('admission/webhook-identity.yaml')), ...await readManifests(deploy('admission/managed-labels.yaml')),
  ]);
  // Until the API server has loaded it, the tenant's Role lets an anchor-typed Secret through (removed again).
  let probes = 0;
  await eventually(async () => {
    const probe = `probe-${probes++}`;
    const refusal = await refusalOf(tenantClient.request('POST', `/api/v1/namespaces/${namespace}/secrets`,
      { apiVersion: 'v1', kind: 'Secret', type: anchorSecretType, metadata: { name: probe } }));
    if (!refusal) await admin.request('DELETE', `/api/v1/namespaces/${namespace}/secrets/${probe}`);
    return refusal?.statusCode === 403;
  }, 'the managed-labels policy refuses the tenant', { intervalMs: 100 });
}

describe('only the webhook relabels what it made or makes token anchors (deploy/admission/managed-labels.yaml, real API server)', function () {
  let plane: ControlPlane;
  let admin: KubeRestClient;
  let tenantClient: KubeRestClient;
  let webhook: KubeRestClient;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}-${++counter}`;
  const request = { namespace: 'team-a', name: 'dpu-01' };
  const anchorLabels = { ...managedLabels(request.namespace, request.name), [anchorLabel]: 'true' };
  const labelsAt = async (path: string) => (await admin.request<{ metadata: { labels?: Record<string, string> } }>('GET', path)).metadata.labels ?? {};
  /** A ServiceAccount and an anchor as the webhook makes them (POSTed as its identity). */
  const managedAccount = async () => {
    const name = fresh('sa');
    await webhook.request('POST', accountsPath, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, labels: managedLabels(request.namespace, request.name) } });
    return { name, path: `${accountsPath}/${name}`, labels: managedLabels(request.namespace, request.name) };
  };
  const anchor = async () => {
    const name = fresh('anchor');
    await webhook.request('POST', secretsPath, { apiVersion: 'v1', kind: 'Secret', type: anchorSecretType, metadata: { name, labels: anchorLabels } });
    return { name, path: `${secretsPath}/${name}`, labels: anchorLabels };
  };
  const patchLabels = (client: KubeRestClient, path: string, labels: Record<string, string | null> | null) =>
    client.request('PATCH', path, { metadata: { labels } }, mergePatch);
  /** A whole-object replace (kubectl replace, or edit with a PUT) with `change` applied to its labels. */
  const replaceLabels = async (client: KubeRestClient, path: string, change: (labels: Record<string, string>) => void) => {
    const stored = await client.request<{ metadata: { labels?: Record<string, string> } }>('GET', path);
    stored.metadata.labels ??= {};
    change(stored.metadata.labels);
    return client.request('PUT', path, stored);
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'managed-labels' });
    admin = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
    webhook = new KubeRestClient(connectionOf(await webhookKubeConfig(plane)), { timeoutMs: 10_000 });
    await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: tenant } });
    tenantClient = await wildcardTenant(plane, admin, tenant);
    // The shipped ClusterRole lets the webhook patch ServiceAccounts, not Secrets: this Role adds that, to show what the policies admit.
    await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${tenant}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'webhook-patch' },
      rules: [{ apiGroups: [''], resources: ['secrets', 'serviceaccounts'], verbs: ['get', 'patch', 'update'] }],
    });
    await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${tenant}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'webhook-patch' },
      subjects: [{ kind: 'ServiceAccount', name: 'dpu-credential-webhook', namespace: 'dpu-credential-webhook' }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'webhook-patch' },
    });
    await installPolicies(plane, admin, tenantClient, tenant);
  });

  after(async function () {
    tenantClient?.close();
    webhook?.close();
    admin?.close();
    await plane?.stop();
  });

  it('refuses the tenant stripping or changing the managed labels of a managed ServiceAccount (PATCH and PUT); they stay', async function () {
    const account = await managedAccount();
    expectDeniedBy(policy, await refusalOf(patchLabels(tenantClient, account.path, null)),
      `refused: ${tenantUser} changing ${allManagedKeys} on ServiceAccount ${tenant}/${account.name}`);
    expectDeniedBy(policy, await refusalOf(patchLabels(tenantClient, account.path, { 'svc.dpu.nvidia.com/managed-by-controller': null })),
      `changing svc.dpu.nvidia.com/managed-by-controller on ServiceAccount ${tenant}/${account.name}`);
    expectDeniedBy(policy, await refusalOf(patchLabels(tenantClient, account.path, { 'svc.dpu.nvidia.com/credential-request-name': 'another' })),
      `changing svc.dpu.nvidia.com/credential-request-name on ServiceAccount`);
    expectDeniedBy(policy, await refusalOf(replaceLabels(tenantClient, account.path, (labels) => {
      delete labels['svc.dpu.nvidia.com/credential-request-namespace'];
    })), `changing svc.dpu.nvidia.com/credential-request-namespace on ServiceAccount`);
    expect(await labelsAt(account.path)).to.deep.equal(account.labels);
  });

  it('refuses the tenant stripping or changing the labels of a token anchor (PATCH and PUT); they stay', async function () {
    const made = await anchor();
    expectDeniedBy(policy, await refusalOf(stripLabelsAndOwners(await tenantKubeConfig(plane, admin), 'secrets', tenant, made.name)),
      `changing ${allManagedKeys}, svc.dpu.nvidia.com/token-anchor on token anchor ${tenant}/${made.name}`);
    expectDeniedBy(policy, await refusalOf(patchLabels(tenantClient, made.path, { [anchorLabel]: 'false' })), `changing svc.dpu.nvidia.com/token-anchor on token anchor`);
    expectDeniedBy(policy, await refusalOf(replaceLabels(tenantClient, made.path, (labels) => {
      labels['svc.dpu.nvidia.com/credential-request-namespace'] = 'elsewhere';
    })), `changing svc.dpu.nvidia.com/credential-request-namespace on token anchor`);
    expect(await labelsAt(made.path)).to.deep.equal(made.labels);
  });

  it('refuses the tenant creating a Secret of type svc.dpu.nvidia.com/token-anchor, labelled or not', async function () {
    for (const labels of [{}, anchorLabels]) {
      const name = fresh('forged');
      expectDeniedBy(policy, await refusalOf(tenantClient.request('POST', secretsPath, { apiVersion: 'v1', kind: 'Secret', type: anchorSecretType, metadata: { name, labels } })),
        `only the webhook (${webhookUser}) may create Secrets of type svc.dpu.nvidia.com/token-anchor; refused: ${tenantUser} creating Secret ${tenant}/${name}`);
      expect(await readStatus(admin, `${secretsPath}/${name}`)).to.equal(404);
    }
  });

  it('lets the tenant edit other labels and annotations of both, write its own ServiceAccounts and Secrets, and delete the managed ones', async function () {
    const account = await managedAccount();
    const made = await anchor();
    for (const path of [account.path, made.path]) {
      await tenantClient.request('PATCH', path, { metadata: { labels: { team: 'b' }, annotations: { note: 'audited' } } }, mergePatch);
      await replaceLabels(tenantClient, path, (labels) => { labels.team = 'c'; });
    }
    expect(await labelsAt(account.path)).to.deep.equal({ ...account.labels, team: 'c' });
    expect(await labelsAt(made.path)).to.deep.equal({ ...made.labels, team: 'c' });
    // Its own objects, a ServiceAccount with the managed labels too (not refused: see the policy's header).
    const own = fresh('own');
    await tenantClient.request('POST', accountsPath, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: own, labels: managedLabels(tenant, own) } });
    await tenantClient.request('POST', secretsPath, { apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: own, labels: managedLabels(tenant, own) } });
    await patchLabels(tenantClient, `${secretsPath}/${own}`, null);
    expect(await labelsAt(`${secretsPath}/${own}`)).to.deep.equal({});
    for (const path of [account.path, made.path]) {
      await tenantClient.request('DELETE', path);
      expect(await readStatus(admin, path)).to.equal(404);
    }
  });

  it('holds the cluster admin to it too', async function () {
    const account = await managedAccount();
    expectDeniedBy(policy, await refusalOf(patchLabels(admin, account.path, null)), `on ServiceAccount ${tenant}/${account.name}`);
    expect(await labelsAt(account.path)).to.deep.equal(account.labels);
  });

  it('admits the webhook\'s identity labelling a ServiceAccount handed to its request, changing an anchor\'s labels, and deleting an anchor whatever its labels (webhook-identity.yaml)', async function () {
    // A ServiceAccount it did not make, handed over by its editor (DPF v24.10's, unlabelled): the webhook adds the labels.
    const handed = fresh('sa');
    await admin.request('POST', accountsPath, { apiVersion: 'v1', kind: 'ServiceAccount',
      metadata: { name: handed, annotations: { 'svc.dpu.nvidia.com/adopt-for-request': `${request.namespace}/${request.name}` } } });
    await patchLabels(webhook, `${accountsPath}/${handed}`, managedLabels(request.namespace, request.name));
    expect(await labelsAt(`${accountsPath}/${handed}`)).to.deep.equal(managedLabels(request.namespace, request.name));
    // Stripping a ServiceAccount's labels is no part of its work: webhook-identity.yaml refuses it (this policy would admit it).
    const account = await managedAccount();
    expectDeniedBy('dpu-credential-webhook-identity', await refusalOf(patchLabels(webhook, account.path, null)),
      'may update a ServiceAccount only by adding the managed labels of the request its svc.dpu.nvidia.com/adopt-for-request annotation names');
    expect(await labelsAt(account.path)).to.deep.equal(account.labels);
    const made = await anchor();
    await patchLabels(webhook, made.path, null);
    await webhook.request('PATCH', made.path, { data: { planted: Buffer.from('x').toString('base64') } }, mergePatch);
    await webhook.request('DELETE', made.path);
    expect(await readStatus(admin, made.path)).to.equal(404);
  });
});

describe('a leaked host-cluster token is revoked at grant withdrawal though its holder tried to strip the labels (webhook as its ServiceAccount, real API servers)', function () {
  let env: WebhookEnv;
  let admin: KubeRestClient;
  let tenantClient: KubeRestClient;
  const requester = 'team-a';

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    // The webhook calls its host cluster as its ServiceAccount with the shipped rights, as in production.
    env = await WebhookEnv.start({ hostIdentity: webhookKubeConfig });
    admin = new KubeRestClient(connectionOf(env.hostConfig()), { timeoutMs: 10_000 });
    for (const name of [requester, tenant]) {
      await env.hostConfig().makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
    }
    tenantClient = await wildcardTenant(env.host, admin, tenant);
    await installPolicies(env.host, admin, tenantClient, tenant);
  });

  after(async function () {
    this.timeout(60_000);
    tenantClient?.close();
    admin?.close();
    await env?.stop();
  });

  it('refuses the holder stripping the labels of the anchor and the ServiceAccount, and withdrawing the grant revokes the token', async function () {
    this.timeout(60_000);
    const name = 'leaked';
    const account = `${name}-sa`;
    // team-b lets team-a's requests make and use ServiceAccounts in team-b.
    const withdraw = await bindClusterRole(env.hostConfig(), tenant, 'dpu-credential-user', requester, name);
    await env.createRequest(name, { serviceAccount: { name: account, namespace: tenant }, type: 'tokenFile', secret: { name: `${name}-cred` } },
      { namespace: requester });
    await env.driver.reconcile(requester, name);
    const ready = condition(await env.driver.readParent(requester, name), 'Ready');
    expect(ready, ready?.message).to.include({ status: 'True' });
    const token = tokenIn((await readSecret(env.hostConfig(), `${name}-cred`, requester))!);
    expect(await identityOn(env.host, token)).to.equal(`system:serviceaccount:${tenant}:${account}`);
    const anchorName = bindingOf(token).anchor!;

    // The holder, whose Role grants everything in team-b, tries to make both unrecognisable.
    const holder = await tenantKubeConfig(env.host, admin);
    expectDeniedBy(policy, await refusalOf(stripLabelsAndOwners(holder, 'secrets', tenant, anchorName)), `on token anchor ${tenant}/${anchorName}`);
    expectDeniedBy(policy, await refusalOf(stripLabelsAndOwners(holder, 'serviceaccounts', tenant, account)), `on ServiceAccount ${tenant}/${account}`);

    await withdraw();
    await env.driver.syncOnce(requester, name);
    expect(condition(await env.driver.readParent(requester, name), 'Ready')).to.include({ status: 'False', reason: 'ReferenceNotPermitted' });
    expect(await identityAfterAuthCache(env.host, token)).to.equal(401);
    expect(await readStatus(admin, `${secretsPath}/${anchorName}`)).to.equal(404);
    expect(await readStatus(admin, `${accountsPath}/${account}`)).to.equal(404);
  });
});

/** A kubeconfig of the wildcard tenant of team-b on `plane`. */
async function tenantKubeConfig(plane: ControlPlane, admin: KubeRestClient) {
  const minted = await admin.request<{ status: { token: string } }>('POST', `${accountsPath}/tenant/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600 },
  });
  return tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.status.token);
}
