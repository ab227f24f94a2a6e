// Consumers that never restart: a long-running client-go program (kubectl proxy) over the
// kubeconfig Secret mounted the way the kubelet mounts a Secret volume follows a renewal and a
// rotation by itself, because the kubeconfig names the token key beside it as its tokenFile.
import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bindingOf } from '../../server/kube/tokens.js';
import { freePort } from '../../harness/net.js';
import { startProcess, type ManagedProcess } from '../../harness/processes.js';
import { identityAfterAuthCache, readSecret, tokenIn } from '../../harness/secrets.js';
import { SecretVolume } from '../../harness/secret-volume.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';
import { eventually } from '../../harness/eventually.js';

const run = promisify(execFile);

interface ProxyAnswer {
  username?: string;
  /** The credential ID the API server saw (the token's jti), or the HTTP status of a refusal. */
  credential?: string;
  status: number;
}

describe('a consumer that never restarts (kubectl proxy over a mounted kubeconfig Secret, real API servers)', function () {
  let env: WebhookEnv;
  let dir: string;
  let proxy: ManagedProcess | undefined;
  let proxyUrl: string;
  const name = 'consumer';
  let mounted: SecretVolume;
  const secret = async () => (await readSecret(env.hostConfig(), `${name}-cred`))!;
  /** What the kubelet does when the Secret changes: every key swapped at once. */
  const mount = async (current: V1Secret) => {
    await mounted.write(Object.fromEntries(Object.entries(current.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString()])));
  };
  const throughProxy = async (): Promise<ProxyAnswer> => {
    const response = await fetch(`${proxyUrl}/apis/authentication.k8s.io/v1/selfsubjectreviews`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
    });
    if (!response.ok) return { status: response.status };
    const review = await response.json() as { status?: { userInfo?: { username?: string; extra?: Record<string, string[]> } } };
    const userInfo = review.status?.userInfo;
    return { status: response.status, username: userInfo?.username, credential: userInfo?.extra?.['authentication.kubernetes.io/credential-id']?.[0] };
  };
  const credentialOf = (token: string) => `JTI=${bindingOf(token).tokenId}`;
  /** client-go re-reads a tokenFile about every minute: waits up to 90 s for the proxy to present `token`. */
  const untilProxyPresents = async (token: string): Promise<ProxyAnswer> => {
    let answer = await throughProxy();
    // Past the wait, the last answer: the caller's assertion says what it was.
    await eventually(async () => (answer = await throughProxy()).credential === credentialOf(token), 'the proxy presents the token',
      { timeoutMs: 90_000, intervalMs: 1_000 }).catch(() => undefined);
    return answer;
  };
  const serviceAccount = `system:serviceaccount:default:${name}-sa`;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    dir = await mkdtemp(join(tmpdir(), 'consumer-'));
    mounted = new SecretVolume(join(dir, 'volume'));
    await env.createRequest(name, {
      serviceAccount: { name: `${name}-sa` }, duration: '1h', type: 'kubeconfig', secret: { name: `${name}-cred` },
      targetCluster: { name: 'dpu-cplane-tenant1' },
    });
    await env.driver.reconcile('default', name);
    await mount(await secret());
    const port = await freePort();
    proxyUrl = `http://127.0.0.1:${port}`;
    proxy = await startProcess(env.target.kubectlPath, ['proxy', `--kubeconfig=${mounted.path('kubeconfig')}`, `--port=${port}`, '--address=127.0.0.1'],
      join(dir, 'proxy.log'));
    await eventually(() => throughProxy().then(() => true), 'kubectl proxy answers', { intervalMs: 100 });
  });

  after(async function () {
    this.timeout(60_000);
    await proxy?.stop();
    await env?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers as the ServiceAccount with the token the volume holds', async function () {
    const token = tokenIn(await secret());
    expect(await untilProxyPresents(token)).to.deep.equal({ status: 201, username: serviceAccount, credential: credentialOf(token) });
  });

  it('follows a renewal without a restart, and keeps answering once the renewed token\'s predecessor is revoked after its grace', async function () {
    this.timeout(180_000);
    const before = tokenIn(await secret());
    const { response } = await env.driver.syncOnce('default', name);
    await env.renewAfter('default', name, response.resyncAfterSeconds);
    const renewed = tokenIn(await secret());
    expect(renewed).to.not.equal(before);
    await mount(await secret());
    expect(await untilProxyPresents(renewed)).to.deep.equal({ status: 201, username: serviceAccount, credential: credentialOf(renewed) });

    env.clock.advance(601_000);
    try {
      await env.driver.syncOnce('default', name);
    } finally {
      env.clock.reset();
    }
    expect(await identityAfterAuthCache(env.target, before)).to.equal(401);
    expect(await throughProxy()).to.deep.equal({ status: 201, username: serviceAccount, credential: credentialOf(renewed) });
  });

  it('follows a rotation whose old token is revoked at once, without a restart', async function () {
    this.timeout(180_000);
    const before = tokenIn(await secret());
    await env.updateRequest(name, (r) => {
      r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'leaked' };
    });
    await env.driver.reconcile('default', name);
    const rotated = tokenIn(await secret());
    expect(rotated).to.not.equal(before);
    expect(await identityAfterAuthCache(env.target, before)).to.equal(401);
    await mount(await secret());
    expect(await untilProxyPresents(rotated)).to.deep.equal({ status: 201, username: serviceAccount, credential: credentialOf(rotated) });
  });

  it('still works as a lone file, away from its token key (the inline token)', async function () {
    const alone = join(dir, 'alone');
    await mkdir(alone);
    await copyFile(mounted.path('kubeconfig'), join(alone, 'kubeconfig'));
    const { stdout } = await run(env.target.kubectlPath, ['auth', 'whoami', `--kubeconfig=${join(alone, 'kubeconfig')}`, '-o', 'jsonpath={.status.userInfo.username}']);
    expect(stdout).to.equal(serviceAccount);
  });
});
