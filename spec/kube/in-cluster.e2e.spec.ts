// The in-cluster configuration against a real API server: the kubernetes Service's address from
// the environment, the mounted ca.crt verifying the server, and the mounted token, which the
// kubelet rotates in place: once it is a minute old the file's new token is the one sent.
import { expect } from 'chai';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadHostConnection, tokenFileMaxAgeMs } from '../../server/kube/connection.js';
import { KubeApiError, KubeRestClient } from '../../server/kube/rest.js';
import { eventually } from '../../harness/eventually.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { connectionOf } from '../../harness/connection.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';

describe('the in-cluster connection (real API server)', function () {
  let plane: ControlPlane;
  let admin: KubeRestClient;
  let client: KubeRestClient | undefined;
  let dir: string;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'in-cluster' });
    admin = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
    dir = await mkdtemp(join(tmpdir(), 'in-cluster-'));
  });

  after(async function () {
    client?.close();
    admin?.close();
    await plane?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const tokenOf = async (name: string) => {
    await admin.request('POST', '/api/v1/namespaces/default/serviceaccounts', { metadata: { name } });
    const minted = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/default/serviceaccounts/${name}/token`, { spec: { expirationSeconds: 600 } });
    return minted.status.token;
  };
  const whoAmI = async (api: KubeRestClient) => (await api.request<{ status: { userInfo: { username: string } } }>('POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' })).status.userInfo.username;

  it('calls the Service\'s address with the mounted CA and token, and the rotated token once it is a minute old', async function () {
    const accountDir = join(dir, 'serviceaccount');
    await mkdir(accountDir);
    await writeFile(join(accountDir, 'ca.crt'), plane.pki.caCertPem);
    await writeFile(join(accountDir, 'token'), await tokenOf('first'));
    const { hostname, port } = new URL(plane.server);
    let now = 0;
    const { connection, inCluster } = loadHostConnection({
      env: { KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port }, home: join(dir, 'no-home'), serviceAccountDir: accountDir, now: () => now,
    });
    expect(inCluster).to.equal(true);
    client = new KubeRestClient(connection, { timeoutMs: 10_000 });
    expect(await whoAmI(client)).to.equal('system:serviceaccount:default:first');

    await writeFile(join(accountDir, 'token'), await tokenOf('second'));
    expect(await whoAmI(client)).to.equal('system:serviceaccount:default:first');
    now += tokenFileMaxAgeMs;
    expect(await whoAmI(client)).to.equal('system:serviceaccount:default:second');
  });

  it('reads the token file again at once when the server refuses the token it holds, and sends the call with the new one', async function () {
    this.timeout(60_000);
    const accountDir = join(dir, 'revoked');
    await mkdir(accountDir);
    await writeFile(join(accountDir, 'ca.crt'), plane.pki.caCertPem);
    const revoked = await tokenOf('revoked');
    await writeFile(join(accountDir, 'token'), revoked);
    const { hostname, port } = new URL(plane.server);
    const now = 0;
    const { connection } = loadHostConnection({
      env: { KUBERNETES_SERVICE_HOST: hostname, KUBERNETES_SERVICE_PORT: port }, home: join(dir, 'no-home'), serviceAccountDir: accountDir, now: () => now,
    });
    const inCluster = new KubeRestClient(connection, { timeoutMs: 10_000 });
    try {
      expect(await whoAmI(inCluster)).to.equal('system:serviceaccount:default:revoked');
      // The kubelet has written the successor; the old token dies with its ServiceAccount (once the
      // API server's 10 s cache of authenticated tokens lets go of it), well within the minute.
      await writeFile(join(accountDir, 'token'), await tokenOf('successor'));
      await admin.request('DELETE', '/api/v1/namespaces/default/serviceaccounts/revoked');
      const withRevoked = new KubeRestClient({ server: plane.server, caPem: plane.pki.caCertPem, bearerToken: () => revoked }, { timeoutMs: 10_000 });
      try {
        await eventually(async () => (await whoAmI(withRevoked).catch((error: unknown) => error)) instanceof KubeApiError,
          'the revoked token is refused', { timeoutMs: 30_000, intervalMs: 500 });
      } finally {
        withRevoked.close();
      }
      expect(await whoAmI(inCluster)).to.equal('system:serviceaccount:default:successor');
    } finally {
      inCluster.close();
    }
  });
});
