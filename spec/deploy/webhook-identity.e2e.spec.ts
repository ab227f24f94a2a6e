// deploy/admission/webhook-identity.yaml on a real API server, acting as the webhook with a
// real token of its ServiceAccount bound to the shipped ClusterRole: whatever a hook request
// says, that identity may create and delete only token anchors among Secrets, and
// ServiceAccounts (and their tokens) only when managed and outside the protected namespaces.
// Everyone else, the admin here, is unaffected. The webhook of the other e2e suites calls its
// host cluster with the admin's kubeconfig, so this policy never matches it there.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { managedLabels } from '../../server/credential/names.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { deleteManagedServiceAccount, ensureServiceAccount, ServiceAccountInUseError } from '../../server/kube/service-accounts.js';
import { anchorLabel, anchorSecretType, createAnchor, deleteAnchor } from '../../server/kube/token-anchors.js';
import { requestToken } from '../../server/kube/tokens.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { createObjects, readManifests, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';
import { eventually } from '../../harness/eventually.js';
import { connectionOf } from '../../harness/connection.js';
import { expectDeniedBy, refusalOf } from '../../harness/admission-refusals.js';

const deploy = (path: string) => fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));
const policyName = 'dpu-credential-webhook-identity';
const webhookNamespace = 'dpu-credential-webhook';
const webhookUser = `system:serviceaccount:${webhookNamespace}:dpu-credential-webhook`;
const tenant = 'team-a';
const request = { namespace: tenant, name: 'some-request' };
const anchorLabels = { ...managedLabels(request.namespace, request.name), [anchorLabel]: 'true' };

describe('deploy/admission/webhook-identity.yaml: the webhook\'s own identity is held to anchors and managed ServiceAccounts (real API server)', function () {
  let plane: ControlPlane;
  let admin: KubeRestClient;
  let webhook: KubeRestClient;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}-${++counter}`;

  const secretsPath = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets`;
  const accountsPath = (namespace: string) => `/api/v1/namespaces/${namespace}/serviceaccounts`;
  const secret = (name: string, type: string, labels: Record<string, string>, data?: Record<string, string>) => ({
    apiVersion: 'v1', kind: 'Secret', type, metadata: { name, labels }, ...(data ? { data } : {}),
  });
  const account = (name: string, labels?: Record<string, string>) => ({
    apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, ...(labels ? { labels } : {}) },
  });
  const tokenRequest = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [], expirationSeconds: 600 } };
  const exists = async (path: string) => (await refusalOf(admin.request('GET', path)))?.statusCode !== 404;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'webhook-identity' });
    const adminConfig = plane.adminKubeConfig();
    admin = new KubeRestClient(connectionOf(adminConfig), { timeoutMs: 10_000 });
    // The webhook's namespace, ServiceAccount and rights as shipped.
    await createObjects(adminConfig, [...await readManifests(deploy('namespace.yaml')), ...await readManifests(deploy('rbac.yaml'))]);
    for (const name of [tenant, 'metacontroller']) {
      await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    }
    const minted = await admin.request<{ status: { token: string } }>(
      'POST', `${accountsPath(webhookNamespace)}/dpu-credential-webhook/token`, { ...tokenRequest, spec: { expirationSeconds: 3_600 } });
    const webhookConfig = tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.status.token);
    expect(await whoAmI(webhookConfig)).to.equal(webhookUser);
    webhook = new KubeRestClient(connectionOf(webhookConfig), { timeoutMs: 10_000 });

    await createObjects(adminConfig, await readManifests(deploy('admission/webhook-identity.yaml')));
    // In force once the API server has loaded it: until then the webhook's RBAC lets an
    // Opaque Secret through (removed again).
    let probes = 0;
    const unexpected: Error[] = [];
    await eventually(async () => {
      const probe = `probe-${probes++}`;
      const refusal = await refusalOf(webhook.request('POST', secretsPath(tenant), secret(probe, 'Opaque', {})));
      if (refusal && refusal.statusCode !== 403) unexpected.push(refusal);
      if (refusal) return true;
      await admin.request('DELETE', `${secretsPath(tenant)}/${probe}`);
      return false;
    }, 'the ValidatingAdmissionPolicy refuses an Opaque Secret', { intervalMs: 100 });
    if (unexpected[0]) throw unexpected[0];
  });

  after(async function () {
    webhook?.close();
    admin?.close();
    await plane?.stop();
  });

  describe('Secrets', function () {
    it('refuses the webhook creating an Opaque Secret, even labelled as an anchor', async function () {
      const name = fresh('opaque');
      expectDeniedBy(policyName, await refusalOf(webhook.request('POST', secretsPath(tenant), secret(name, 'Opaque', anchorLabels))),
        `may create and delete only token anchors`);
      expect(await exists(`${secretsPath(tenant)}/${name}`)).to.equal(false);
    });

    it('refuses an anchor-type Secret without the anchor or managed-by label, or holding data', async function () {
      const { [anchorLabel]: _anchor, ...withoutAnchorLabel } = anchorLabels;
      const withoutManagedBy = { [anchorLabel]: 'true' };
      for (const [what, body] of [
        ['without the anchor label', secret(fresh('anchor'), anchorSecretType, withoutAnchorLabel)],
        ['without the managed-by label', secret(fresh('anchor'), anchorSecretType, withoutManagedBy)],
        ['with data', secret(fresh('anchor'), anchorSecretType, anchorLabels, { token: Buffer.from('planted').toString('base64') })],
      ] as const) {
        const refusal = await refusalOf(webhook.request('POST', secretsPath(tenant), body));
        expect(refusal?.statusCode, what).to.equal(403);
        expect(refusal?.message, what).to.contain(`refused: create Secret ${tenant}/${body.metadata.name}`);
      }
    });

    it('refuses the webhook deleting an ordinary Secret (DELETE admission sees the stored object)', async function () {
      const name = fresh('ordinary');
      await admin.request('POST', secretsPath(tenant), secret(name, 'Opaque', {}, { password: Buffer.from('hunter2').toString('base64') }));
      expectDeniedBy(policyName, await refusalOf(webhook.request('DELETE', `${secretsPath(tenant)}/${name}`)),
        `refused: delete Secret ${tenant}/${name}`);
      expect(await exists(`${secretsPath(tenant)}/${name}`)).to.equal(true);
    });

    it('lets the webhook delete a Secret of the anchor type whatever its labels and data now say (a holder who stripped or filled it cannot keep its token)', async function () {
      const name = fresh('stripped');
      // Made before managed-labels.yaml, which lets no one but the webhook make one, or edited since.
      await admin.request('POST', secretsPath(tenant), secret(name, anchorSecretType, { team: 'a' }, { planted: Buffer.from('x').toString('base64') }));
      expect(await refusalOf(webhook.request('DELETE', `${secretsPath(tenant)}/${name}`))).to.equal(undefined);
      expect(await exists(`${secretsPath(tenant)}/${name}`)).to.equal(false);
    });

    it('lets the webhook create and delete an anchor in any namespace, a protected one too: Secrets are judged by type and labels only', async function () {
      const name = fresh('anchor');
      expect(await refusalOf(webhook.request('POST', secretsPath('metacontroller'), secret(name, anchorSecretType, anchorLabels)))).to.equal(undefined);
      expect(await refusalOf(webhook.request('DELETE', `${secretsPath('metacontroller')}/${name}`))).to.equal(undefined);
    });
  });

  describe('ServiceAccounts and tokens', function () {
    const protectedNamespaces = ['kube-system', 'kube-public', 'metacontroller', webhookNamespace];

    for (const namespace of protectedNamespaces) {
      it(`refuses the webhook creating a ServiceAccount in ${namespace}, managed labels or not`, async function () {
        const name = fresh('sa');
        expectDeniedBy(policyName, await refusalOf(webhook.request('POST', accountsPath(namespace), account(name, managedLabels(tenant, name)))),
          `may not create ServiceAccount ${namespace}/${name}: namespace ${namespace} is protected`);
        expect(await exists(`${accountsPath(namespace)}/${name}`)).to.equal(false);
      });
    }

    it('refuses the webhook minting a token for a managed ServiceAccount in kube-system, or deleting an unmanaged one there; a managed one it may delete (revocation)', async function () {
      const name = fresh('sa');
      await admin.request('POST', accountsPath('kube-system'), account(name, managedLabels(tenant, name)));
      const path = `${accountsPath('kube-system')}/${name}`;
      // serviceaccounts/token is a subresource: the policy sees its namespace and the ServiceAccount's name.
      expectDeniedBy(policyName, await refusalOf(webhook.request('POST', `${path}/token`, tokenRequest)),
        `may not mint a token for ServiceAccount kube-system/${name}: namespace kube-system is protected`);
      const unmanaged = fresh('sa');
      await admin.request('POST', accountsPath('kube-system'), account(unmanaged));
      expectDeniedBy(policyName, await refusalOf(webhook.request('DELETE', `${accountsPath('kube-system')}/${unmanaged}`)),
        `may not delete ServiceAccount kube-system/${unmanaged}`);
      expect(await exists(`${accountsPath('kube-system')}/${unmanaged}`)).to.equal(true);
      // Made there before the protection existed: deleting it is how its tokens are taken back.
      await webhook.request('DELETE', path);
      expect(await exists(path)).to.equal(false);
    });

    it('refuses the webhook minting a token for its own ServiceAccount', async function () {
      expectDeniedBy(policyName, await refusalOf(webhook.request('POST', `${accountsPath(webhookNamespace)}/dpu-credential-webhook/token`, tokenRequest)),
        `namespace ${webhookNamespace} is protected`);
    });

    it('refuses the webhook creating or deleting a ServiceAccount without the managed-by label in an ordinary namespace', async function () {
      const made = fresh('sa');
      expectDeniedBy(policyName, await refusalOf(webhook.request('POST', accountsPath(tenant), account(made))),
        `may create and delete only ServiceAccounts labelled svc.dpu.nvidia.com/managed-by-controller=dpuservicecredentialrequestcontroller; refused: create ServiceAccount ${tenant}/${made}`);
      const someoneElses = fresh('sa');
      await admin.request('POST', accountsPath(tenant), account(someoneElses, { team: 'a' }));
      expectDeniedBy(policyName, await refusalOf(webhook.request('DELETE', `${accountsPath(tenant)}/${someoneElses}`)),
        `refused: delete ServiceAccount ${tenant}/${someoneElses}`);
      expect(await exists(`${accountsPath(tenant)}/${someoneElses}`)).to.equal(true);
    });
  });

  describe('updates of ServiceAccounts: only the adoption of one handed to a request', function () {
    const consent = (value: string) => ({ 'svc.dpu.nvidia.com/adopt-for-request': value });
    const label = (name: string, labels: Record<string, string | null> | null, extra: Record<string, unknown> = {}) =>
      webhook.request('PATCH', `${accountsPath(tenant)}/${name}`, { metadata: { labels }, ...extra }, { contentType: 'application/merge-patch+json' });

    it('lets the webhook add the managed labels of the request the annotation names, and its own code adopt it (same UID)', async function () {
      const name = fresh('dpf-sa');
      await admin.request('POST', accountsPath(tenant), { ...account(name), metadata: { name, annotations: consent(`${request.namespace}/${request.name}`) } });
      const { metadata: { uid } } = await admin.request<{ metadata: { uid: string } }>('GET', `${accountsPath(tenant)}/${name}`);
      expect(await ensureServiceAccount(webhook, { namespace: tenant, name }, request)).to.deep.equal({ uid, created: false, adopted: true });
      const adopted = await admin.request<{ metadata: { labels?: Record<string, string> } }>('GET', `${accountsPath(tenant)}/${name}`);
      expect(adopted.metadata.labels).to.deep.equal(managedLabels(request.namespace, request.name));
    });

    it('refuses the webhook labelling a ServiceAccount without consent, with consent for another request, or changing anything else', async function () {
      const bare = fresh('dpf-sa');
      await admin.request('POST', accountsPath(tenant), account(bare));
      expectDeniedBy(policyName, await refusalOf(label(bare, managedLabels(request.namespace, request.name))),
        `may update a ServiceAccount only by adding the managed labels of the request its svc.dpu.nvidia.com/adopt-for-request annotation names, and nothing else; refused: update ServiceAccount ${tenant}/${bare}`);
      const handed = fresh('dpf-sa');
      await admin.request('POST', accountsPath(tenant), { ...account(handed), metadata: { name: handed, annotations: consent(`${request.namespace}/other`) } });
      expectDeniedBy(policyName, await refusalOf(label(handed, managedLabels(request.namespace, request.name))), `refused: update ServiceAccount ${tenant}/${handed}`);
      const mine = fresh('dpf-sa');
      await admin.request('POST', accountsPath(tenant), { ...account(mine), metadata: { name: mine, annotations: consent(`${request.namespace}/${request.name}`) } });
      expectDeniedBy(policyName, await refusalOf(label(mine, managedLabels(request.namespace, request.name), { automountServiceAccountToken: true })),
        `refused: update ServiceAccount ${tenant}/${mine}`);
      expectDeniedBy(policyName, await refusalOf(label(mine, managedLabels(request.namespace, request.name), { imagePullSecrets: [{ name: 'x' }] })),
        `refused: update ServiceAccount ${tenant}/${mine}`);
      expectDeniedBy(policyName, await refusalOf(label(mine, { team: 'a' })), `refused: update ServiceAccount ${tenant}/${mine}`);
      // Nothing of it changed.
      const after = await admin.request<{ metadata: { labels?: Record<string, string> } }>('GET', `${accountsPath(tenant)}/${mine}`);
      expect(after.metadata.labels ?? {}).to.deep.equal({});
    });

    it('refuses the webhook moving a ServiceAccount labelled for another request, or dropping or adding a label of its owner\'s, even with consent', async function () {
      const another = fresh('dpf-sa');
      // Labelled for another request (made by an admin here), its annotation naming this one.
      await admin.request('POST', accountsPath(tenant), { ...account(another), metadata: {
        name: another, annotations: consent(`${request.namespace}/${request.name}`), labels: managedLabels(request.namespace, 'other-request'),
      } });
      expectDeniedBy(policyName, await refusalOf(label(another, managedLabels(request.namespace, request.name))), `refused: update ServiceAccount ${tenant}/${another}`);
      const owned = fresh('dpf-sa');
      await admin.request('POST', accountsPath(tenant), { ...account(owned), metadata: {
        name: owned, annotations: consent(`${request.namespace}/${request.name}`), labels: { team: 'a' },
      } });
      expectDeniedBy(policyName, await refusalOf(label(owned, { ...managedLabels(request.namespace, request.name), team: null })),
        `refused: update ServiceAccount ${tenant}/${owned}`);
      expectDeniedBy(policyName, await refusalOf(label(owned, { ...managedLabels(request.namespace, request.name), extra: 'x' })),
        `refused: update ServiceAccount ${tenant}/${owned}`);
      expect((await admin.request<{ metadata: { labels?: Record<string, string> } }>('GET', `${accountsPath(tenant)}/${owned}`)).metadata.labels)
        .to.deep.equal({ team: 'a' });
      // The adoption itself still goes through, keeping the owner's label.
      await label(owned, managedLabels(request.namespace, request.name));
      expect((await admin.request<{ metadata: { labels?: Record<string, string> } }>('GET', `${accountsPath(tenant)}/${owned}`)).metadata.labels)
        .to.deep.equal({ team: 'a', ...managedLabels(request.namespace, request.name) });
    });
  });

  it('lets the webhook\'s own code do a host-mode credential\'s whole life: ServiceAccount, anchor, token, revocation, deletion', async function () {
    const serviceAccount = { namespace: tenant, name: fresh('managed') };
    const { uid, created } = await ensureServiceAccount(webhook, serviceAccount, request);
    expect(created).to.equal(true);
    const anchor = await createAnchor(webhook, { ...serviceAccount, uid }, request);
    const minted = await requestToken(webhook, tenant, serviceAccount.name, 600, anchor);
    expect(await whoAmI(tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.token))).to.equal(`system:serviceaccount:${tenant}:${serviceAccount.name}`);

    expect(await deleteAnchor(webhook, tenant, anchor.name, request, serviceAccount.name, anchor.uid)).to.equal('deleted');
    expect(await exists(`${secretsPath(tenant)}/${anchor.name}`)).to.equal(false);
    expect(await deleteManagedServiceAccount(webhook, { ...serviceAccount, uid }, request)).to.equal('deleted');
    expect(await exists(`${accountsPath(tenant)}/${serviceAccount.name}`)).to.equal(false);
  });

  it('rotates for a host ServiceAccount of the recorded UID whose labels were stripped: used unlabelled (the policy lets the webhook label only a ServiceAccount handed over by annotation), anchor and token made', async function () {
    const serviceAccount = { namespace: tenant, name: fresh('stripped') };
    const { uid } = await ensureServiceAccount(webhook, serviceAccount, request);
    await admin.request('PATCH', `${accountsPath(tenant)}/${serviceAccount.name}`, { metadata: { labels: null } },
      { contentType: 'application/merge-patch+json' });
    // Without the recorded UID it is not the request's. ensure reads the API server's watch cache
    // (resourceVersion=0), which may show the labels for a few milliseconds more.
    await eventually(async () => await ensureServiceAccount(webhook, serviceAccount, request).then(() => false, (error: unknown) => {
      if (error instanceof ServiceAccountInUseError) return true;
      throw error;
    }), 'the stripped ServiceAccount refused without its UID');
    expect(await ensureServiceAccount(webhook, { ...serviceAccount, uid }, request)).to.deep.equal({ uid, created: false, tampered: 'unlabelled' });
    const anchor = await createAnchor(webhook, { ...serviceAccount, uid }, request);
    const minted = await requestToken(webhook, tenant, serviceAccount.name, 600, anchor);
    expect(await whoAmI(tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.token))).to.equal(`system:serviceaccount:${tenant}:${serviceAccount.name}`);
    expect(await deleteAnchor(webhook, tenant, anchor.name, request, serviceAccount.name, anchor.uid)).to.equal('deleted');
  });

  it('leaves everyone else alone: the admin creates and deletes an Opaque Secret and a kube-system ServiceAccount, and mints its token', async function () {
    const name = fresh('admin');
    await admin.request('POST', secretsPath(tenant), secret(name, 'Opaque', {}));
    await admin.request('DELETE', `${secretsPath(tenant)}/${name}`);
    await admin.request('POST', accountsPath('kube-system'), account(name));
    const minted = await admin.request<{ status: { token: string } }>('POST', `${accountsPath('kube-system')}/${name}/token`, tokenRequest);
    expect(minted.status.token).to.be.a('string').and.not.be.empty;
    await admin.request('DELETE', `${accountsPath('kube-system')}/${name}`);
    expect(await exists(`${accountsPath('kube-system')}/${name}`)).to.equal(false);
  });
});
