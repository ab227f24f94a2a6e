// deploy/admission/selector-label.yaml and request-status.yaml on a real API server (issue 24
// points 1 and 5): a tenant whose Role in its namespace grants every verb on every resource
// may neither put the label controller-uid on a Secret (by which Metacontroller would adopt
// it as a child of a request and send it in every hook body) nor write a request's status;
// Metacontroller's ServiceAccount may do both, and everything else the tenant did before
// still works. The driver-run flow under both policies: spec/deploy/chart-install.e2e.spec.ts,
// whose driver calls the API server as Metacontroller's ServiceAccount.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { KubeRestClient } from '../../server/kube/rest.js';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { connectionOf } from '../../harness/connection.js';
import { eventually } from '../../harness/eventually.js';
import { createObjects, readManifests, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { metacontrollerKubeConfig, metacontrollerUser } from '../../harness/metacontroller-identity.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';
import { expectDeniedBy, refusalOf } from '../../harness/admission-refusals.js';

const deploy = (path: string) => fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));
const tenant = 'team-a';
const tenantUser = `system:serviceaccount:${tenant}:tenant`;
const secretsPath = `/api/v1/namespaces/${tenant}/secrets`;
const requestsPath = `/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/${tenant}/dpuservicecredentialrequests`;
const mergePatch = { contentType: 'application/merge-patch+json' };

describe('only Metacontroller labels Secrets controller-uid and writes a request\'s status (deploy/admission/selector-label.yaml, request-status.yaml, real API server)', function () {
  let plane: ControlPlane;
  let admin: KubeRestClient;
  let tenantClient: KubeRestClient;
  let metacontroller: KubeRestClient;
  let request: DpuServiceCredentialRequest;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}-${++counter}`;
  const secret = (name: string, labels: Record<string, string> = {}) => ({
    apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name, labels }, data: { note: Buffer.from('hello').toString('base64') },
  });
  const labelsOf = async (name: string) =>
    (await admin.request<{ metadata: { labels?: Record<string, string> } }>('GET', `${secretsPath}/${name}`)).metadata.labels ?? {};
  const statusOf = async (name: string) => (await admin.request<DpuServiceCredentialRequest>('GET', `${requestsPath}/${name}`)).status;
  const setLabel = (client: KubeRestClient, name: string, value: string | null) =>
    client.request('PATCH', `${secretsPath}/${name}`, { metadata: { labels: { 'controller-uid': value } } }, mergePatch);
  const writeStatus = (client: KubeRestClient, name: string, status: object) =>
    client.request('PATCH', `${requestsPath}/${name}/status`, { status }, mergePatch);

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'metacontroller-writes' });
    const adminConfig = plane.adminKubeConfig();
    admin = new KubeRestClient(connectionOf(adminConfig), { timeoutMs: 10_000 });
    await createObjects(adminConfig, await readManifests(deploy('crd/svc.dpu.nvidia.com_dpuservicecredentialrequests.yaml')));
    // The tenant: a ServiceAccount whose Role grants everything in its namespace, status subresources included.
    await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: tenant } });
    await admin.request('POST', `/api/v1/namespaces/${tenant}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tenant' } });
    await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${tenant}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'everything' }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
    });
    await admin.request('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${tenant}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'everything' },
      subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: tenant }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'everything' },
    });
    const minted = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${tenant}/serviceaccounts/tenant/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3_600 },
    });
    const tenantConfig = tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.status.token);
    expect(await whoAmI(tenantConfig)).to.equal(tenantUser);
    tenantClient = new KubeRestClient(connectionOf(tenantConfig), { timeoutMs: 10_000 });
    metacontroller = new KubeRestClient(connectionOf(await metacontrollerKubeConfig(plane)), { timeoutMs: 10_000 });

    request = await tenantClient.request<DpuServiceCredentialRequest>('POST', requestsPath, {
      apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: 'dpu-01' },
      spec: { serviceAccount: { name: 'dpu-01-sa' }, type: 'kubeconfig', secret: { name: 'dpu-01-credential' } },
    });

    await createObjects(adminConfig, [
      ...await readManifests(deploy('admission/selector-label.yaml')), ...await readManifests(deploy('admission/request-status.yaml')),
    ]);
    // In force once the API server has loaded them: until then the tenant's Role lets both through
    // (the probe Secret is removed again).
    let probes = 0;
    await eventually(async () => {
      const probe = `probe-${probes++}`;
      const refusal = await refusalOf(tenantClient.request('POST', secretsPath, secret(probe, { 'controller-uid': request.metadata!.uid! })));
      if (!refusal) await admin.request('DELETE', `${secretsPath}/${probe}`);
      return refusal?.statusCode === 403;
    }, 'the selector-label policy refuses the tenant', { intervalMs: 100 });
    await eventually(async () => (await refusalOf(writeStatus(tenantClient, 'dpu-01', { secret: 'probe' })))?.statusCode === 403,
      'the request-status policy refuses the tenant', { intervalMs: 100 });
    await writeStatus(metacontroller, 'dpu-01', { secret: `${tenant}/dpu-01-credential`, lastForcedRotationAt: '2026-12-01T00:00:00Z' });
  });

  after(async function () {
    tenantClient?.close();
    metacontroller?.close();
    admin?.close();
    await plane?.stop();
  });

  describe('the label controller-uid on Secrets (selector-label.yaml)', function () {
    const policy = 'dpu-credential-selector-label';

    it('refuses the tenant creating a Secret labelled with its request\'s UID, which Metacontroller would adopt', async function () {
      const name = fresh('padding');
      expectDeniedBy(policy, await refusalOf(tenantClient.request('POST', secretsPath, secret(name, { 'controller-uid': request.metadata!.uid! }))),
        `only Metacontroller (${metacontrollerUser}) may set, change or remove the label controller-uid on a Secret`);
      expect(await refusalOf(admin.request('GET', `${secretsPath}/${name}`))).to.have.property('statusCode', 404);
    });

    it('refuses the tenant adding it to a Secret, changing it or removing it; the Secret keeps its labels', async function () {
      const own = fresh('own');
      await tenantClient.request('POST', secretsPath, secret(own, { app: 'a' }));
      expectDeniedBy(policy, await refusalOf(setLabel(tenantClient, own, request.metadata!.uid!)), `refused: add controller-uid on Secret ${tenant}/${own}`);
      expect(await labelsOf(own)).to.deep.equal({ app: 'a' });

      const child = fresh('child');
      await metacontroller.request('POST', secretsPath, secret(child, { 'controller-uid': request.metadata!.uid! }));
      expectDeniedBy(policy, await refusalOf(setLabel(tenantClient, child, 'another-uid')), `refused: change controller-uid on Secret ${tenant}/${child}`);
      expectDeniedBy(policy, await refusalOf(setLabel(tenantClient, child, null)), `refused: remove controller-uid on Secret ${tenant}/${child}`);
      // A whole-object replace without the label removes it just the same.
      const stored = await tenantClient.request<{ metadata: { labels: Record<string, string> } }>('GET', `${secretsPath}/${child}`);
      stored.metadata.labels = {};
      expectDeniedBy(policy, await refusalOf(tenantClient.request('PUT', `${secretsPath}/${child}`, stored)), 'refused: remove controller-uid');
      expect(await labelsOf(child)).to.deep.equal({ 'controller-uid': request.metadata!.uid! });
    });

    it('lets the tenant write Secrets without the label, edit a labelled one leaving the label as it is, and delete it', async function () {
      const plain = fresh('plain');
      await tenantClient.request('POST', secretsPath, secret(plain, { 'example.com/controller-uid': 'x' }));
      await tenantClient.request('PATCH', `${secretsPath}/${plain}`, { metadata: { labels: { team: 'a' } } }, mergePatch);
      const child = fresh('child');
      await metacontroller.request('POST', secretsPath, secret(child, { 'controller-uid': request.metadata!.uid! }));
      await tenantClient.request('PATCH', `${secretsPath}/${child}`, { metadata: { labels: { team: 'a' } }, data: { note: 'Ynll' } }, mergePatch);
      expect(await labelsOf(child)).to.deep.equal({ 'controller-uid': request.metadata!.uid!, team: 'a' });
      await tenantClient.request('DELETE', `${secretsPath}/${child}`);
      expect(await refusalOf(admin.request('GET', `${secretsPath}/${child}`))).to.have.property('statusCode', 404);
    });

    it('lets Metacontroller\'s ServiceAccount create a labelled child, and add, change and remove the label', async function () {
      const child = fresh('child');
      await metacontroller.request('POST', secretsPath, secret(child, { 'controller-uid': request.metadata!.uid! }));
      await setLabel(metacontroller, child, 'another-uid');
      expect(await labelsOf(child)).to.deep.equal({ 'controller-uid': 'another-uid' });
      await setLabel(metacontroller, child, null);
      expect(await labelsOf(child)).to.deep.equal({});
      await setLabel(metacontroller, child, request.metadata!.uid!);
      expect(await labelsOf(child)).to.deep.equal({ 'controller-uid': request.metadata!.uid! });
    });
  });

  describe('a request\'s status (request-status.yaml)', function () {
    const policy = 'dpu-credential-request-status';

    it('refuses the tenant writing the status subresource (PATCH or PUT): lastForcedRotationAt and status.secret stay', async function () {
      const message = `only Metacontroller (${metacontrollerUser}) may write the status of a DPUServiceCredentialRequest; refused: ${tenantUser}`;
      expectDeniedBy(policy, await refusalOf(writeStatus(tenantClient, 'dpu-01', { secret: 'kube-system/bootstrap-token', lastForcedRotationAt: null })), message);
      const stored = await tenantClient.request<DpuServiceCredentialRequest>('GET', `${requestsPath}/dpu-01`);
      expectDeniedBy(policy, await refusalOf(tenantClient.request('PUT', `${requestsPath}/dpu-01/status`, { ...stored, status: {} })), message);
      expect(await statusOf('dpu-01')).to.deep.equal({ secret: `${tenant}/dpu-01-credential`, lastForcedRotationAt: '2026-12-01T00:00:00Z' });
    });

    it('needs no rule on the main resource: the API server drops status from a create and ignores it in an update', async function () {
      const created = await tenantClient.request<DpuServiceCredentialRequest>('POST', requestsPath, {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: 'with-status' },
        spec: { serviceAccount: { name: 'sa' }, type: 'kubeconfig', secret: { name: 's' } }, status: { secret: 'kube-system/bootstrap-token' },
      });
      expect(created.status).to.equal(undefined);
      await tenantClient.request('PATCH', `${requestsPath}/dpu-01`, { status: { secret: 'kube-system/bootstrap-token' } }, mergePatch);
      expect((await statusOf('dpu-01'))?.secret).to.equal(`${tenant}/dpu-01-credential`);
    });

    it('lets Metacontroller\'s ServiceAccount write it', async function () {
      await writeStatus(metacontroller, 'dpu-01', { lastForcedRotationAt: null, secret: `${tenant}/dpu-01-credential`, observedGeneration: 1 });
      expect(await statusOf('dpu-01')).to.deep.equal({ secret: `${tenant}/dpu-01-credential`, observedGeneration: 1 });
    });
  });
});
