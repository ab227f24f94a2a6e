// The adoption of a label-less ServiceAccount (DPF v24.10's) on a target cluster, where no
// admission policy re-reads it: the consent must hold at the moment of the label patch, not
// only in the read before it. The webhook reads from the API server's watch cache
// (resourceVersion=0), which may be milliseconds stale; the read here is served from a copy
// taken before the consent was withdrawn, as such a stale read would be. Everything else is
// the real API server.
import { expect } from 'chai';
import { managedLabels } from '../../server/credential/names.js';
import { KubeRestClient, type ApiCaller } from '../../server/kube/rest.js';
import { ensureServiceAccount, ServiceAccountInUseError } from '../../server/kube/service-accounts.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { connectionOf } from '../../harness/connection.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';

const consentAnnotation = 'svc.dpu.nvidia.com/adopt-for-request';
const request = { namespace: 'dpf-operator-system', name: 'ovn-dpu' };
const accountsPath = '/api/v1/namespaces/default/serviceaccounts';

interface Account { metadata: { uid: string; labels?: Record<string, string>; annotations?: Record<string, string> } }

/** The real client, but its first GET of `path` answers `stale` (what a lagging watch cache would). */
function staleOnce(client: KubeRestClient, path: string, stale: unknown): ApiCaller {
  let served = false;
  return {
    server: client.server,
    async request<T>(method: string, requestPath: string, body?: unknown, options?: { contentType?: string }): Promise<T> {
      if (!served && method === 'GET' && requestPath.startsWith(path)) {
        served = true;
        return stale as T;
      }
      return await client.request<T>(method, requestPath, body, options);
    },
  };
}

describe('adopting a ServiceAccount by consent, on a target cluster (real API server)', function () {
  let plane: ControlPlane;
  let admin: KubeRestClient;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'adoption' });
    admin = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
  });

  after(async function () {
    admin?.close();
    await plane?.stop();
  });

  const makeAccount = (name: string) => admin.request<Account>('POST', accountsPath, {
    apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, annotations: { [consentAnnotation]: `${request.namespace}/${request.name}` } },
  });

  it('adopts one whose consent names the request: labelled as the request\'s, the same object', async function () {
    const made = await makeAccount('consenting');
    expect(await ensureServiceAccount(admin, { namespace: 'default', name: 'consenting' }, request))
      .to.deep.equal({ uid: made.metadata.uid, created: false, adopted: true });
    const after = await admin.request<Account>('GET', `${accountsPath}/consenting`);
    expect(after.metadata.labels).to.deep.equal(managedLabels(request.namespace, request.name));
  });

  it('refuses one whose consent was withdrawn after a read that still showed it, and leaves it unlabelled', async function () {
    const stale = await makeAccount('withdrawn');
    await admin.request('PATCH', `${accountsPath}/withdrawn`, { metadata: { annotations: null } }, { contentType: 'application/merge-patch+json' });
    const client = staleOnce(admin, `${accountsPath}/withdrawn`, stale);
    const outcome = await ensureServiceAccount(client, { namespace: 'default', name: 'withdrawn' }, request).catch((error: unknown) => error);
    expect(outcome).to.be.instanceOf(ServiceAccountInUseError);
    expect((outcome as ServiceAccountInUseError).why).to.equal('noConsent');
    const after = await admin.request<Account>('GET', `${accountsPath}/withdrawn`);
    expect(after.metadata.labels ?? {}).to.deep.equal({});
  });
});
