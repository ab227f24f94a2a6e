// The hooks end to end: real host and target API servers, the webhook on loopback,
// and the Metacontroller driver applying what it answers.
import { ApiException, CoreV1Api, CustomObjectsApi, type V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { defaultPolicy } from '../../server/credential/policy.js';
import { jitterMsFor } from '../../server/credential/token.js';
import { bindingOf, serviceAccountUidOf } from '../../server/kube/tokens.js';
import type { CustomizeResponse, SyncResponse } from '../../server/metacontroller.js';
import { dpuClusterApi, registerDpuCluster } from '../../harness/dpucluster.js';
import { eventually } from '../../harness/eventually.js';
import { apiErrorCode, condition, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { authenticatesAs, decode, identityAfterAuthCache, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { startFaultProxy } from '../../harness/fault-proxy.js';
import { grantTargetNamespaces } from '../../harness/grants.js';
import { eventsOnceRecorded, stripLabelsAndOwners } from '../../harness/tampering.js';
import { shippedControllerPath } from '../../harness/metacontroller/controller-spec.js';
import { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { controlPlaneStartTimeoutMs, parentApi, serviceNetwork, WebhookEnv } from '../../harness/webhook-env.js';

const seedPath = new URL('../../examples/dpuservice-credential-request.yaml', import.meta.url);

describe('sync hook end to end (real API servers, Metacontroller driver)', function () {
  let env: WebhookEnv;
  let counter = 0;
  /** A fresh request per test, so tests do not share ServiceAccounts or Secrets. */
  const names = () => {
    counter += 1;
    return { request: `req-${counter}`, serviceAccount: `sa-${counter}`, secret: `cred-${counter}` };
  };
  const spec = (n: ReturnType<typeof names>, extra: Record<string, unknown> = {}) => ({
    serviceAccount: { name: n.serviceAccount },
    duration: '1h',
    targetCluster: { name: 'dpu-cplane-tenant1' },
    type: 'kubeconfig',
    secret: { name: n.secret },
    ...extra,
  });
  const targetCore = () => env.target.adminKubeConfig().makeApiClient(CoreV1Api);
  const hostCore = () => env.hostConfig().makeApiClient(CoreV1Api);
  const parent = (name: string) => env.driver.readParent('default', name);
  const secret = async (name: string) => {
    const found = await readSecret(env.hostConfig(), name);
    if (!found) throw new Error(`no Secret ${name}`);
    return found;
  };
  const serviceAccountUid = async (name: string, namespace = 'default') =>
    (await targetCore().readNamespacedServiceAccount({ namespace, name })).metadata?.uid;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it("turns the seed's example into a kubeconfig Secret that authenticates to the target as its ServiceAccount", async function () {
    const seed = parse(await readFile(seedPath, 'utf8')) as DpuServiceCredentialRequest;
    await env.hostConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: 'svc.dpu.nvidia.com', version: 'v1alpha1', plural: 'dpuservicecredentialrequests', namespace: 'default', body: seed,
    });
    const { response } = await env.driver.reconcile('default', 'dpu-01-credential-request');

    const output = await secret('dpu-01-credential');
    expect(output.type).to.equal('Opaque');
    expect(Object.keys(output.data ?? {})).to.deep.equal(['kubeconfig', 'token']);
    expect(output.metadata?.labels).to.include({ dpuservice: 'dpu-01', 'svc.dpu.nvidia.com/credential-request-name': 'dpu-01-credential-request' });
    expect(await authenticatesAs(output)).to.equal('system:serviceaccount:default:dpu-01-sa');
    const onHost = tokenKubeConfig(env.host.server, env.host.pki.caCertPem, tokenIn(output));
    expect(await apiErrorCode(whoAmI(onHost))).to.equal(401);

    const request = await parent('dpu-01-credential-request');
    expect(condition(request, 'Ready')).to.include({ status: 'True', reason: 'Success' });
    expect(request?.status).to.include({
      serviceAccount: 'default/dpu-01-sa', targetCluster: 'default/dpu-cplane-tenant1',
      targetClusterUID: env.dpuCluster.uid, secret: 'default/dpu-01-credential',
    });
    expect(request?.status?.observedGeneration).to.equal(request?.metadata?.generation);
    const account = await targetCore().readNamespacedServiceAccount({ namespace: 'default', name: 'dpu-01-sa' });
    expect(account.automountServiceAccountToken).to.equal(false);
    // The mint path discards any token whose claim names another UID: the claim must be there.
    expect(serviceAccountUidOf(tokenIn(output))).to.equal(account.metadata?.uid);
    expect(account.metadata?.labels).to.deep.equal({
      'svc.dpu.nvidia.com/managed-by-controller': 'dpuservicecredentialrequestcontroller',
      'svc.dpu.nvidia.com/credential-request-name': 'dpu-01-credential-request',
      'svc.dpu.nvidia.com/credential-request-namespace': 'default',
    });
    expect(response.resyncAfterSeconds).to.be.within(2_870, 2_881);
  });

  it('writes exactly the four tokenFile keys, pointing at the target, with a token that authenticates', async function () {
    const n = names();
    await env.createRequest(n.request, spec(n, { type: 'tokenFile' }));
    await env.driver.reconcile('default', n.request);
    const output = await secret(n.secret);
    expect(Object.keys(output.data ?? {}).sort()).to.deep.equal(['KUBERNETES_CA_DATA', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'TOKEN_FILE']);
    expect(decode(output, 'KUBERNETES_SERVICE_HOST')).to.equal('127.0.0.1');
    expect(decode(output, 'KUBERNETES_SERVICE_PORT')).to.equal(String(env.target.apiServerPort));
    expect(decode(output, 'KUBERNETES_CA_DATA')).to.equal(env.target.pki.caCertPem);
    expect(await authenticatesAs(output)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
  });

  it('schedules the next sync at 80% of the real token lifetime less the fixed jitter', async function () {
    const n = names();
    const created = await env.createRequest(n.request, spec(n, { duration: '2h' }));
    const { response } = await env.driver.reconcile('default', n.request);
    const status = (await parent(n.request))!.status!;
    const lifetimeMs = Date.parse(status.expirationTimestamp!) - Date.parse(status.issuedAt!);
    expect(lifetimeMs).to.equal(2 * 3_600_000);
    const expected = (0.8 * lifetimeMs - jitterMsFor(created.metadata!.uid!)) / 1_000;
    expect(response.resyncAfterSeconds).to.be.within(expected - 5, expected + 1);
  });

  it('renews a token longer than 30h after 24h at the latest', async function () {
    const n = names();
    const created = await env.createRequest(n.request, spec(n, { duration: '48h' }));
    const { response } = await env.driver.reconcile('default', n.request);
    const expected = 86_400 - jitterMsFor(created.metadata!.uid!) / 1_000;
    expect(response.resyncAfterSeconds).to.be.within(expected - 5, expected + 1);
  });

  it('mints nothing on a second sync with nothing changed, and answers byte-identical status and Secret', async function () {
    const n = names();
    await env.createRequest(n.request, spec(n));
    await env.driver.reconcile('default', n.request);
    const tokenBefore = tokenIn(await secret(n.secret));
    const first = await env.driver.reconcile('default', n.request);
    const second = await env.driver.reconcile('default', n.request);
    expect(JSON.stringify(second.response.status)).to.equal(JSON.stringify(first.response.status));
    expect(JSON.stringify(second.response.children)).to.equal(JSON.stringify(first.response.children));
    expect(tokenIn(await secret(n.secret))).to.equal(tokenBefore);
  });

  it('mints a new token once the refresh time has passed', async function () {
    const n = names();
    await env.createRequest(n.request, spec(n));
    const { response } = await env.driver.reconcile('default', n.request);
    const before = tokenIn(await secret(n.secret));
    await env.renewAfter('default', n.request, response.resyncAfterSeconds);
    expect(tokenIn(await secret(n.secret))).to.not.equal(before);
    expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
  });

  it('exports the minted token\'s lifetime and the mint count on /metrics, and reports ready', async function () {
    const n = names();
    await env.createRequest(n.request, spec(n));
    await env.driver.reconcile('default', n.request);
    const status = (await parent(n.request))!.status!;
    const metrics = await (await fetch(env.metricsUrl)).text();
    const expiry = new RegExp(`dpu_credential_token_expiration_timestamp_seconds\\{namespace="default",name="${n.request}"\\} (\\d+)`).exec(metrics);
    expect(Number(expiry?.[1])).to.equal(Date.parse(status.expirationTimestamp!) / 1_000);
    expect(metrics).to.match(new RegExp(`dpu_credential_token_issued_timestamp_seconds\\{namespace="default",name="${n.request}"\\} ${Date.parse(status.issuedAt!) / 1_000}`));
    expect(metrics).to.match(/dpu_credential_tokens_minted_total [1-9]/);
    expect(metrics).to.match(/dpu_credential_hook_duration_seconds_count\{hook="sync",outcome="minted"\} [1-9]/);
    expect((await fetch(`${env.plainUrl}/readyz`)).status).to.equal(200);
  });

  describe('changes to the request (SPEC section 3)', function () {
    it('re-renders the Secret with the same token when spec.metadata labels or annotations change', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n, { metadata: { labels: { a: '1' } } }));
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        (r.spec as Record<string, unknown>).metadata = { labels: { a: '2' }, annotations: { note: 'x' } };
      });
      await env.driver.reconcile('default', n.request);
      const after = await secret(n.secret);
      expect(after.metadata?.labels).to.include({ a: '2' });
      expect(after.metadata?.annotations).to.include({ note: 'x' });
      expect(tokenIn(after)).to.equal(before);
    });

    it('re-renders at once with the same token when the type changes', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        (r.spec as Record<string, unknown>).type = 'tokenFile';
      });
      await env.driver.reconcile('default', n.request);
      const after = await secret(n.secret);
      expect(Object.keys(after.data ?? {})).to.include('TOKEN_FILE').and.not.include('kubeconfig');
      expect(tokenIn(after)).to.equal(before);
    });

    it('moves the same token to a new Secret when secret.name changes, and the old Secret goes', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        (r.spec as { secret: { name: string } }).secret.name = `${n.secret}-renamed`;
      });
      await env.driver.reconcile('default', n.request);
      expect(tokenIn(await secret(`${n.secret}-renamed`))).to.equal(before);
      expect(await readSecret(env.hostConfig(), n.secret)).to.equal(undefined);
      expect((await parent(n.request))?.status?.secret).to.equal(`default/${n.secret}-renamed`);
    });

    it('mints a new token when the duration changes', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        (r.spec as Record<string, unknown>).duration = '2h';
      });
      await env.driver.reconcile('default', n.request);
      const status = (await parent(n.request))!.status!;
      expect(tokenIn(await secret(n.secret))).to.not.equal(before);
      expect(Date.parse(status.expirationTimestamp!) - Date.parse(status.issuedAt!)).to.equal(2 * 3_600_000);
    });

    it('keeps the token when the duration is rewritten to the same lifetime (1h to 60m)', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        (r.spec as Record<string, unknown>).duration = '60m';
      });
      await env.driver.reconcile('default', n.request);
      expect(tokenIn(await secret(n.secret))).to.equal(before);
    });

    it('deletes the old ServiceAccount and mints for the new one when serviceAccount changes', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      await env.updateRequest(n.request, (r) => {
        (r.spec as { serviceAccount: { name: string } }).serviceAccount.name = `${n.serviceAccount}-new`;
      });
      await env.driver.reconcile('default', n.request);
      expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount }))).to.equal(404);
      expect(await authenticatesAs(await secret(n.secret))).to.equal(`system:serviceaccount:default:${n.serviceAccount}-new`);
      expect((await parent(n.request))?.status?.serviceAccount).to.equal(`default/${n.serviceAccount}-new`);
    });

    it('deletes the old ServiceAccount in the OLD cluster when targetCluster changes', async function () {
      const n = names();
      const second = await registerDpuCluster(env.hostConfig(), env.host, { name: `tenant-on-host-${n.request}` });
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      await env.updateRequest(n.request, (r) => {
        (r.spec as { targetCluster: { name: string } }).targetCluster.name = second.name;
      });
      await env.driver.reconcile('default', n.request);
      expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount }))).to.equal(404);
      const output = await secret(n.secret);
      expect(decode(output, 'kubeconfig')).to.contain(env.host.server);
      expect(await authenticatesAs(output)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      expect((await parent(n.request))?.status).to.include({ targetCluster: `default/${second.name}`, targetClusterUID: second.uid });
    });

    it('leaves no ServiceAccount behind when serviceAccount changes twice and the first change never got a token', async function () {
      this.timeout(60_000);
      const n = names();
      const proxy = await startFaultProxy(env.target);
      try {
        const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `flaky-${n.request}`, kubeconfigYaml: proxy.kubeconfigYaml() });
        await env.createRequest(n.request, spec(n, { targetCluster: { name: cluster.name } }));
        await env.driver.reconcile('default', n.request);
        const rename = (name: string) => env.updateRequest(n.request, (r) => {
          (r.spec as { serviceAccount: { name: string } }).serviceAccount.name = name;
        });
        proxy.fault = { method: 'POST', pathPattern: /\/token$/, statusCode: 500 };
        await rename(`${n.serviceAccount}-b`);
        await env.driver.reconcile('default', n.request); // makes -b, cannot mint for it
        expect((await parent(n.request))?.status?.serviceAccounts?.map((entry) => entry.serviceAccount))
          .to.deep.equal([`default/${n.serviceAccount}`, `default/${n.serviceAccount}-b`]);
        proxy.fault = undefined;
        await rename(`${n.serviceAccount}-c`);
        await env.driver.reconcile('default', n.request);
        for (const gone of [n.serviceAccount, `${n.serviceAccount}-b`]) {
          expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: gone })), gone).to.equal(404);
        }
        const status = (await parent(n.request))?.status;
        expect(status?.serviceAccounts?.map((entry) => entry.serviceAccount)).to.deep.equal([`default/${n.serviceAccount}-c`]);
        expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
      } finally {
        await proxy.close();
      }
    });

    it('keeps the ServiceAccount its token belongs to when targetCluster moves to another DPUCluster of the same API server', async function () {
      const n = names();
      const alias = await registerDpuCluster(env.hostConfig(), env.target, { name: `alias-${n.request}` });
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      await env.updateRequest(n.request, (r) => {
        (r.spec as { targetCluster: { name: string } }).targetCluster.name = alias.name;
      });
      await env.driver.reconcile('default', n.request);
      expect(await serviceAccountUid(n.serviceAccount)).to.be.a('string');
      expect(await authenticatesAs(await secret(n.secret))).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      const status = (await parent(n.request))?.status;
      expect(status).to.include({ targetCluster: `default/${alias.name}` });
      expect(status?.serviceAccounts).to.have.length(1);
    });

    it('recreates a ServiceAccount deleted out of band and mints for it at the next sync', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const oldUid = await serviceAccountUid(n.serviceAccount);
      await targetCore().deleteNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount });
      // The webhook learns of the deletion through its watch; the sync after that recreates it.
      const newUid = await eventually(async () => {
        await env.driver.reconcile('default', n.request);
        const uid = await serviceAccountUid(n.serviceAccount);
        return uid !== oldUid && uid;
      }, 'a sync has recreated the ServiceAccount', { timeoutMs: 5_000 });
      expect(newUid).to.not.equal(oldUid);
      const output = await secret(n.secret);
      expect(output.metadata?.annotations?.['svc.dpu.nvidia.com/service-account-uid']).to.equal(newUid);
      expect(await authenticatesAs(output)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
    });

    it('mints a new token when the Secret is deleted out of band', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await hostCore().deleteNamespacedSecret({ namespace: 'default', name: n.secret });
      await env.driver.reconcile('default', n.request);
      const after = await secret(n.secret);
      expect(tokenIn(after)).to.not.equal(before);
      expect(await authenticatesAs(after)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
    });

    it('mints a new token at once when the rotate annotation changes value', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n), { annotations: { 'svc.dpu.nvidia.com/rotate': '1' } });
      await env.driver.reconcile('default', n.request);
      const before = tokenIn(await secret(n.secret));
      await env.driver.reconcile('default', n.request);
      expect(tokenIn(await secret(n.secret))).to.equal(before);
      await env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': '2' };
      });
      await env.driver.reconcile('default', n.request);
      expect(tokenIn(await secret(n.secret))).to.not.equal(before);
    });
  });

  describe('revocation (tokens bound to anchor Secrets in the target cluster)', function () {
    const onTarget = (token: string) => identityOn(env.target, token);

    it('revokes the previous token after a rotation once the Secret is observed holding the new one, never before', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const oldToken = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'leaked' };
      });
      await env.driver.syncOnce('default', n.request); // mints; Metacontroller writes the Secret
      const newToken = tokenIn(await secret(n.secret));
      expect(newToken).to.not.equal(oldToken);
      expect(await onTarget(oldToken)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);

      const anchorsBefore = (await parent(n.request))?.status?.tokenAnchors?.map((entry) => entry.anchor) ?? [];
      expect(anchorsBefore).to.have.length(2);

      await env.driver.syncOnce('default', n.request); // sees the Secret holding the new token
      const status = (await parent(n.request))?.status;
      expect(status?.previousTokensRevokedAt).to.be.a('string');
      expect(status?.tokenAnchors?.map((entry) => entry.anchor)).to.deep.equal([anchorsBefore[1]]);
      expect(await apiErrorCode(targetCore().readNamespacedSecret({ namespace: 'default', name: anchorsBefore[0]! }))).to.equal(404);
      expect(await identityAfterAuthCache(env.target, oldToken)).to.equal(401);
      expect(await onTarget(newToken)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
    });

    it('revokes at a rotation a token whose holder stripped its anchor\'s labels and owner: deleted by its UID, with a Warning AnchorTampered', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const leaked = tokenIn(await secret(n.secret));
      const anchor = bindingOf(leaked).anchor!;
      // The holder of the leaked token, with patch rights on Secrets in its namespace of the target cluster.
      await stripLabelsAndOwners(env.target.adminKubeConfig(), 'secrets', 'default', anchor);
      await env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'after-the-leak' };
      });
      await env.driver.reconcile('default', n.request);
      expect(await identityAfterAuthCache(env.target, leaked)).to.equal(401);
      expect(await apiErrorCode(targetCore().readNamespacedSecret({ namespace: 'default', name: anchor }))).to.equal(404);
      expect((await parent(n.request))?.status?.previousTokensRevokedAt).to.be.a('string');
      const events = await eventsOnceRecorded(env.hostConfig(), 'default', n.request, 'Warning/AnchorTampered');
      expect(events.find((event) => event.reason === 'AnchorTampered')?.note).to.contain(`default/${anchor}`);
      expect(await authenticatesAs(await secret(n.secret))).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
    });

    it('rotates after a leak whose holder stripped the labels of the ServiceAccount and its anchor: the ServiceAccount of the recorded UID is still the request\'s, with a Warning ServiceAccountTampered', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const leaked = tokenIn(await secret(n.secret));
      const anchor = bindingOf(leaked).anchor!;
      const uidBefore = await serviceAccountUid(n.serviceAccount);
      // The holder of the leaked token, with patch rights on Secrets and ServiceAccounts in its namespace of the target cluster.
      await stripLabelsAndOwners(env.target.adminKubeConfig(), 'serviceaccounts', 'default', n.serviceAccount);
      await stripLabelsAndOwners(env.target.adminKubeConfig(), 'secrets', 'default', anchor);
      await env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'after-the-leak' };
      });
      await env.driver.reconcile('default', n.request);
      const after = await parent(n.request);
      expect(condition(after, 'Ready')).to.include({ status: 'True' });
      const rotated = tokenIn(await secret(n.secret));
      expect(rotated).to.not.equal(leaked);
      expect(after?.status?.previousTokensRevokedAt).to.be.a('string');
      expect(await identityAfterAuthCache(env.target, leaked)).to.equal(401);
      expect(await onTarget(rotated)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      const account = await targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount });
      expect(account.metadata?.uid).to.equal(uidBefore);
      expect(account.metadata?.labels?.['svc.dpu.nvidia.com/credential-request-name']).to.equal(n.request);
      const events = await eventsOnceRecorded(env.hostConfig(), 'default', n.request, 'Warning/ServiceAccountTampered');
      expect(events.find((event) => event.reason === 'ServiceAccountTampered')?.note).to.contain(`default/${n.serviceAccount}`);
    });

    it('never reports revoked a token whose stripped anchor has no recorded UID (an older status): TamperingDetected, the anchor left alone', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const leaked = tokenIn(await secret(n.secret));
      const anchor = bindingOf(leaked).anchor!;
      await env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'after-the-leak' };
      });
      await env.driver.syncOnce('default', n.request); // mints; the Secret holds the new token
      // The entry as a release before anchorUID wrote it, and the anchor relabelled by the token's holder.
      const current = await parent(n.request);
      const status = structuredClone(current!.status!);
      status.tokenAnchors = status.tokenAnchors!.map(({ anchorUID: _uid, ...entry }) => entry);
      await env.hostConfig().makeApiClient(CustomObjectsApi)
        .replaceNamespacedCustomObjectStatus({ ...parentApi, namespace: 'default', name: n.request, body: { ...current, status } });
      await stripLabelsAndOwners(env.target.adminKubeConfig(), 'secrets', 'default', anchor);

      await env.driver.syncOnce('default', n.request); // sees the Secret holding the new token
      const after = await parent(n.request);
      expect(after?.status?.previousTokensRevokedAt).to.equal(undefined);
      expect(condition(after, 'Ready')).to.include({ status: 'False', reason: 'TamperingDetected' });
      expect(condition(after, 'ServiceAccountReconciled')?.message).to.contain(`default/${anchor}`).and.to.contain('may still work');
      expect(after?.status?.tokenAnchors?.map((entry) => entry.anchor)).to.include(anchor);
      expect(await onTarget(leaked)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
    });

    it('revokes a renewed token once its grace has passed, counted from the sync that first sees the Secret holding its successor', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      const { response } = await env.driver.reconcile('default', n.request);
      const oldToken = tokenIn(await secret(n.secret));
      await env.renewAfter('default', n.request, response.resyncAfterSeconds);
      const newToken = tokenIn(await secret(n.secret));
      expect(newToken).to.not.equal(oldToken);
      // Within the grace both work: Pods see the new token only when the kubelet refreshes the volume.
      expect(await onTarget(oldToken)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      const anchors = (await parent(n.request))?.status?.tokenAnchors ?? [];
      expect(anchors).to.have.length(2);
      const superseded = anchors.find((entry) => entry.supersededAt);
      expect(superseded?.anchor).to.equal(bindingOf(oldToken).anchor);
      const { response: settled } = await env.driver.syncOnce('default', n.request);
      expect(settled.resyncAfterSeconds).to.be.at.most(600);

      env.clock.advance(600_000);
      try {
        await env.driver.syncOnce('default', n.request);
      } finally {
        env.clock.reset();
      }
      expect((await parent(n.request))?.status?.tokenAnchors?.map((entry) => entry.anchor)).to.deep.equal([bindingOf(newToken).anchor]);
      expect(await apiErrorCode(targetCore().readNamespacedSecret({ namespace: 'default', name: superseded!.anchor }))).to.equal(404);
      expect(await identityAfterAuthCache(env.target, oldToken)).to.equal(401);
      expect(await onTarget(newToken)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
    });

    it('holds a second forced rotation back until the minimum interval has passed, and says when', async function () {
      this.timeout(60_000);
      const n = names();
      const rotate = (value: string) => env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': value };
      });
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const first = tokenIn(await secret(n.secret));
      await rotate('1');
      await env.driver.reconcile('default', n.request);
      const second = tokenIn(await secret(n.secret));
      expect(second).to.not.equal(first);
      const lastForced = (await parent(n.request))?.status?.lastForcedRotationAt;
      expect(lastForced).to.be.a('string');

      await rotate('2');
      const { response } = await env.driver.reconcile('default', n.request);
      expect(tokenIn(await secret(n.secret))).to.equal(second);
      const held = (await parent(n.request))?.status;
      expect(held?.forcedRotationAllowedAt).to.equal(new Date(Date.parse(lastForced!) + 60_000).toISOString().replace('.000Z', 'Z'));
      expect(response.resyncAfterSeconds).to.be.at.most(60);
      expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });

      env.clock.advance(61_000);
      try {
        await env.driver.syncOnce('default', n.request);
      } finally {
        env.clock.reset();
      }
      expect(tokenIn(await secret(n.secret))).to.not.equal(second);
    });

    it('revokes, after MAX_TOKEN_DURATION is lowered (or on upgrade), a token that outlives it, though the Secret is kept as it is', async function () {
      this.timeout(60_000);
      const n = names();
      env.usePolicy({ ...defaultPolicy, maxTokenDurationSeconds: 720 * 3600 });
      try {
        await env.createRequest(n.request, spec(n, { duration: '200h' }));
        await env.driver.reconcile('default', n.request);
      } finally {
        env.usePolicy(undefined);
      }
      const longLived = await secret(n.secret);
      expect(await onTarget(tokenIn(longLived))).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      await env.driver.reconcile('default', n.request);
      expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'False', reason: 'DurationNotPermitted' });
      expect((await secret(n.secret)).data).to.deep.equal(longLived.data);
      expect(await identityAfterAuthCache(env.target, tokenIn(longLived))).to.equal(401);
      expect((await parent(n.request))?.status?.tokenAnchors ?? []).to.deep.equal([]);
    });

    it('refuses a duration above MAX_TOKEN_DURATION and keeps the working Secret as it is', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const token = tokenIn(await secret(n.secret));
      await env.updateRequest(n.request, (r) => {
        (r.spec as { duration: string }).duration = '200h';
      });
      await env.driver.reconcile('default', n.request);
      const ready = condition(await parent(n.request), 'Ready');
      expect(ready).to.include({ status: 'False', reason: 'DurationNotPermitted' });
      expect(ready?.message).to.contain('MAX_TOKEN_DURATION');
      expect(tokenIn(await secret(n.secret))).to.equal(token);
      expect(await onTarget(token)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
    });

    it('binds every token to an anchor Secret of its own, owned by the ServiceAccount', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const [entry] = (await parent(n.request))?.status?.tokenAnchors ?? [];
      const anchor = await targetCore().readNamespacedSecret({ namespace: 'default', name: entry!.anchor });
      expect(anchor.type).to.equal('svc.dpu.nvidia.com/token-anchor');
      expect(anchor.data ?? {}).to.deep.equal({});
      expect(anchor.metadata?.ownerReferences?.[0]).to.include({ kind: 'ServiceAccount', name: n.serviceAccount, uid: await serviceAccountUid(n.serviceAccount) });
      const claims = JSON.parse(Buffer.from(tokenIn(await secret(n.secret)).split('.')[1]!, 'base64url').toString()) as { 'kubernetes.io': { secret: { name: string } } };
      expect(claims['kubernetes.io'].secret.name).to.equal(entry!.anchor);
    });
  });

  describe('Events on the request, as kubectl describe shows them', function () {
    interface EventObject { reason: string; type: string; note: string; regarding: { name: string } }
    const eventsOf = async (name: string): Promise<EventObject[]> => {
      const list = await env.hostConfig().makeApiClient(CustomObjectsApi)
        .listNamespacedCustomObject({ group: 'events.k8s.io', version: 'v1', namespace: 'default', plural: 'events' }) as { items: EventObject[] };
      return list.items.filter((event) => event.regarding.name === name);
    };
    /** The request's Events, once one with this reason is among them (Events are written after the hook answers). */
    const eventsOnceRecorded = (name: string, reason: string): Promise<EventObject[]> => eventually(async () => {
      const events = await eventsOf(name);
      return events.some((event) => event.reason === reason) && events;
    }, `an Event ${reason} is recorded on ${name}`, { timeoutMs: 5_000, intervalMs: 100 });

    it('records the ServiceAccount made and the token issued, a failure once, and the recovery; never a token', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const issued = await eventsOnceRecorded(n.request, 'TokenIssued');
      expect(issued.map((event) => event.reason)).to.include.members(['ServiceAccountCreated', 'TokenIssued']);
      expect(issued.find((event) => event.reason === 'TokenIssued')?.note).to.contain(`service account default/${n.serviceAccount}`);

      await env.target.stopApiServer();
      try {
        await env.updateRequest(n.request, (r) => {
          r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'now' };
        });
        await env.driver.reconcile('default', n.request);
        await env.driver.syncOnce('default', n.request); // failing again for the same reason: no second Warning
      } finally {
        await env.target.startApiServer();
      }
      await env.driver.reconcile('default', n.request);
      const all = await eventsOnceRecorded(n.request, 'Ready');
      expect(all.filter((event) => event.type === 'Warning').map((event) => event.reason)).to.deep.equal(['TargetClusterUnreachable']);
      expect(all.map((event) => event.reason)).to.include.members(['Ready', 'TokensRevoked']);
      const token = tokenIn(await secret(n.secret));
      for (const event of all) expect(event.note).to.not.contain(token.split('.')[1]);
    });
  });

  it('issues host-cluster credentials when targetCluster is omitted', async function () {
    const n = names();
    const { targetCluster: _omitted, ...hostSpec } = spec(n);
    await env.createRequest(n.request, hostSpec);
    await env.driver.reconcile('default', n.request);
    const output = await secret(n.secret);
    const kubeconfig = parse(decode(output, 'kubeconfig')) as { clusters: { name: string; cluster: { server: string } }[] };
    expect(kubeconfig.clusters[0]).to.deep.include({ name: 'incluster' });
    expect(kubeconfig.clusters[0]!.cluster.server).to.equal(env.host.server);
    expect(await authenticatesAs(output)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
    expect((await parent(n.request))?.status).to.not.have.property('targetCluster');
  });

  it('closes the client of a DPUCluster no request has used for 15 minutes, and opens a new one when needed', async function () {
    const n = names();
    const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `idle-${n.request}` });
    await env.createRequest(n.request, spec(n, { targetCluster: { name: cluster.name } }));
    await env.driver.reconcile('default', n.request);
    const open = env.clusters.openTargets;
    env.clusters.closeIdle(Date.now() + 14 * 60_000);
    expect(env.clusters.openTargets).to.equal(open);
    env.clusters.closeIdle(Date.now() + 16 * 60_000);
    expect(env.clusters.openTargets).to.equal(0);
    await env.driver.reconcile('default', n.request);
    expect(env.clusters.openTargets).to.equal(1);
    expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
  });

  describe('ServiceAccount conflicts', function () {
    it('never mints for a pre-existing ServiceAccount it did not create', async function () {
      const n = names();
      await targetCore().createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: n.serviceAccount } } });
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      expect(await readSecret(env.hostConfig(), n.secret)).to.equal(undefined);
      const ready = condition(await parent(n.request), 'Ready');
      expect(ready).to.include({ status: 'False', reason: 'ServiceAccountConflict' });
      expect(ready?.message).to.contain(`service account default/${n.serviceAccount} is already in use`);
    });

    it('never takes over an unlabelled ServiceAccount of another UID made under the name of the one it recorded', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const held = tokenIn(await secret(n.secret));
      await targetCore().deleteNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount });
      await targetCore().createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: n.serviceAccount } } });
      await env.updateRequest(n.request, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'now' };
      });
      await env.driver.reconcile('default', n.request);
      expect(condition(await parent(n.request), 'ServiceAccountReconciled')).to.include({ status: 'False', reason: 'ServiceAccountConflict' });
      expect(tokenIn(await secret(n.secret))).to.equal(held);
      expect((await targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount })).metadata?.labels).to.equal(undefined);
    });

    it('never mints for a ServiceAccount managed for another request', async function () {
      const first = names();
      await env.createRequest(first.request, spec(first));
      await env.driver.reconcile('default', first.request);
      const second = names();
      await env.createRequest(second.request, spec(second, { serviceAccount: { name: first.serviceAccount } }));
      await env.driver.reconcile('default', second.request);
      expect(await readSecret(env.hostConfig(), second.secret)).to.equal(undefined);
      expect(condition(await parent(second.request), 'ServiceAccountReconciled')).to.include({ status: 'False', reason: 'ServiceAccountConflict' });
    });
  });

  it('reports NamespaceNotFound and creates no namespace when the ServiceAccount namespace is missing', async function () {
    const n = names();
    // Granted, so that what is checked is the namespace's existence.
    await grantTargetNamespaces(env.hostConfig(), 'default', 'default', ['absent-namespace'], `grant-${n.request}`);
    await env.createRequest(n.request, spec(n, { serviceAccount: { name: n.serviceAccount, namespace: 'absent-namespace' } }));
    await env.driver.reconcile('default', n.request);
    expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'False', reason: 'NamespaceNotFound' });
    expect(await apiErrorCode(targetCore().readNamespace({ name: 'absent-namespace' }))).to.equal(404);
  });

  describe('invalid specs', function () {
    const rejected: [string, (n: ReturnType<typeof names>) => Record<string, unknown>, string][] = [
      ['a missing serviceAccount', (n) => ({ type: 'kubeconfig', secret: { name: n.secret } }), 'spec.serviceAccount: Required value'],
      ['a missing type', (n) => ({ serviceAccount: { name: n.serviceAccount }, secret: { name: n.secret } }), 'spec.type: Required value'],
      ['a missing secret', (n) => ({ serviceAccount: { name: n.serviceAccount }, type: 'kubeconfig' }), 'spec.secret: Required value'],
      ['an unknown type', (n) => spec(n, { type: 'json' }), 'spec.type: Unsupported value'],
      ['a duration that is not one', (n) => spec(n, { duration: '1e3h' }), 'spec.duration'],
      ['a duration under 10m', (n) => spec(n, { duration: '9m59s' }), 'duration must be at least 10m'],
      ['a name that is not a DNS name', (n) => spec(n, { serviceAccount: { name: 'Not_A_Name' } }), 'spec.serviceAccount.name'],
    ];
    for (const [what, makeSpec, message] of rejected) {
      it(`is rejected by the API server at create: ${what}`, async function () {
        const n = names();
        try {
          await env.createRequest(n.request, makeSpec(n));
          expect.fail('the API server accepted it');
        } catch (error) {
          expect(error).to.be.instanceOf(ApiException);
          expect((error as ApiException<unknown>).code).to.equal(422);
          expect(String((error as ApiException<unknown>).body)).to.contain(message);
        }
      });
    }

    it('is rejected by the API server at create: a name longer than 63 characters', async function () {
      const n = names();
      const error = await env.createRequest('r'.repeat(64), spec(n)).catch((e: unknown) => e);
      expect((error as ApiException<unknown>).code).to.equal(422);
      expect(String((error as ApiException<unknown>).body)).to.contain("name length can't be bigger than 63 chars");
    });

    it('keeps the existing Secret and says InvalidSpec when the secret namespace is another one', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = await secret(n.secret);
      await env.updateRequest(n.request, (r) => {
        (r.spec as { secret: { namespace: string } }).secret.namespace = 'kube-system';
      });
      const { response } = await env.driver.reconcile('default', n.request);
      const after = await secret(n.secret);
      expect(after.data).to.deep.equal(before.data);
      const ready = condition(await parent(n.request), 'SecretReconciled');
      expect(ready).to.include({ status: 'False', reason: 'InvalidSpec' });
      expect(ready?.message).to.contain("must be omitted or equal the request's namespace");
      expect(response.resyncAfterSeconds).to.be.at.least(5);
    });
  });

  describe('target cluster failures', function () {
    it('keeps the Secret, answers quickly and says TargetClusterUnreachable while the target is down, then converges', async function () {
      this.timeout(120_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = await secret(n.secret);
      await env.target.stopApiServer();
      try {
        env.clock.advance(3_600_000); // the token is due: a mint is needed and cannot happen
        const started = Date.now();
        const { response } = await env.driver.reconcile('default', n.request);
        expect(Date.now() - started).to.be.below(10_000);
        expect(response.resyncAfterSeconds).to.be.within(5, 300);
        expect((await secret(n.secret)).data).to.deep.equal(before.data);
        expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'False', reason: 'TargetClusterUnreachable' });
        await env.target.startApiServer();
        await env.driver.syncOnce('default', n.request); // the renewal, at the moved clock
      } finally {
        env.clock.reset();
        await env.target.startApiServer(); // no-op when it runs
      }
      await env.driver.reconcile('default', n.request);
      const after = await secret(n.secret);
      expect(tokenIn(after)).to.not.equal(tokenIn(before));
      expect(await authenticatesAs(after)).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
    });

    it('answers inside the CompositeController\'s timeout when every target call is slow: the token minted is kept, the cleanup retried', async function () {
      this.timeout(60_000);
      const n = names();
      const proxy = await startFaultProxy(env.target);
      const dir = await mkdtemp(join(tmpdir(), 'short-timeout-'));
      // The shipped CompositeController with a 7 s sync timeout: the webhook reads it from the request.
      const controllerPath = join(dir, 'compositecontroller.yaml');
      await writeFile(controllerPath, (await readFile(shippedControllerPath, 'utf8')).replace(/timeout: 10s\n(\s+)path: \/sync/, 'timeout: 7s\n$1path: /sync'));
      const driver = await MetacontrollerDriver.start({ host: env.hostConfig(), network: await serviceNetwork(env.securePort), controllerPath });
      try {
        const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `slow-${n.request}`, kubeconfigYaml: proxy.kubeconfigYaml() });
        await env.createRequest(n.request, spec(n, { targetCluster: { name: cluster.name } }));
        await driver.reconcile('default', n.request);
        // Each call now takes 1.5 s: create the new ServiceAccount, its token's anchor, mint, then
        // delete the old ServiceAccount (a read and a delete) would take 7.5 s; the hook must
        // answer within 7 s less its margin, with the token it minted.
        proxy.delayMs = 1_500;
        await env.updateRequest(n.request, (r) => {
          (r.spec as { serviceAccount: { name: string } }).serviceAccount.name = `${n.serviceAccount}-renamed`;
        });
        const { response } = await driver.syncOnce('default', n.request);
        expect(response.children).to.have.length(1);
        // The Secret points at the proxy, which calls the target as admin: ask the target itself.
        const onTarget = tokenKubeConfig(env.target.server, env.target.pki.caCertPem, tokenIn(await secret(n.secret)));
        expect(await whoAmI(onTarget)).to.equal(`system:serviceaccount:default:${n.serviceAccount}-renamed`);
        expect(condition(await parent(n.request), 'ServiceAccountReconciled')).to.include({ status: 'False', reason: 'ServiceAccountCleanupFailed' });

        proxy.delayMs = 0;
        await driver.reconcile('default', n.request);
        expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount }))).to.equal(404);
        expect(condition(await parent(n.request), 'Ready')).to.include({ status: 'True' });
      } finally {
        driver.close();
        await proxy.close();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('keeps the working Secret when targetCluster is changed to a DPUCluster that does not exist (a typo)', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const before = await secret(n.secret);
      await env.updateRequest(n.request, (r) => {
        (r.spec as { targetCluster: { name: string } }).targetCluster.name = 'dpu-cplane-tenant1-typo';
      });
      await env.driver.reconcile('default', n.request);
      expect((await secret(n.secret)).data).to.deep.equal(before.data);
      expect(await authenticatesAs(await secret(n.secret))).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      const ready = condition(await parent(n.request), 'Ready');
      expect(ready).to.include({ status: 'False', reason: 'TargetClusterNotFound' });
      expect(ready?.message).to.contain('dpu-cplane-tenant1-typo').and.to.contain('is kept');
    });

    it('drops the Secret with TargetClusterNotFound when the DPUCluster is gone, and mints afresh when it comes back', async function () {
      const n = names();
      const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `vanishing-${n.request}` });
      await env.createRequest(n.request, spec(n, { targetCluster: { name: cluster.name } }));
      await env.driver.reconcile('default', n.request);
      expect(await readSecret(env.hostConfig(), n.secret)).to.not.equal(undefined);
      const objects = env.hostConfig().makeApiClient(CustomObjectsApi);
      await objects.deleteNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name: cluster.name });
      await hostCore().deleteNamespacedSecret({ namespace: 'default', name: cluster.kubeconfigSecretName });
      // The webhook reads DPUClusters from its own watch: the next sync after it has seen the deletion says so
      // (without this wait, the periodic resync after it would: spec/metacontroller/dpucluster-watch.e2e.spec.ts).
      await env.clusters.host.dpuClusters!.until((cache) => cache.lookup('default', cluster.name) === null);
      await env.driver.reconcile('default', n.request);
      expect(await readSecret(env.hostConfig(), n.secret)).to.equal(undefined);
      const ready = condition(await parent(n.request), 'Ready');
      expect(ready).to.include({ status: 'False', reason: 'TargetClusterNotFound', message: `waiting for DPUCluster default/${cluster.name}` });

      const back = await registerDpuCluster(env.hostConfig(), env.target, { name: cluster.name });
      await env.driver.reconcile('default', n.request);
      expect(await authenticatesAs(await secret(n.secret))).to.equal(`system:serviceaccount:default:${n.serviceAccount}`);
      expect((await parent(n.request))?.status?.targetClusterUID).to.equal(back.uid);
    });
  });

  describe('finalize', function () {
    it('deletes the ServiceAccount when the request is deleted', async function () {
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      await env.deleteRequest(n.request);
      const { response, hook } = await env.driver.reconcile('default', n.request);
      expect(hook).to.equal('finalize');
      expect(response).to.include({ finalized: true });
      expect(response.children).to.deep.equal([]);
      expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount }))).to.equal(404);
      expect(await parent(n.request)).to.equal(undefined);
    });

    it('deletes at finalize, by its UID, a ServiceAccount whose labels were stripped: its token stops working, with a Warning ServiceAccountTampered', async function () {
      this.timeout(60_000);
      const n = names();
      await env.createRequest(n.request, spec(n));
      await env.driver.reconcile('default', n.request);
      const leaked = tokenIn(await secret(n.secret));
      await stripLabelsAndOwners(env.target.adminKubeConfig(), 'serviceaccounts', 'default', n.serviceAccount);
      await env.deleteRequest(n.request);
      const { response } = await env.driver.reconcile('default', n.request);
      expect(response).to.include({ finalized: true });
      expect(await identityAfterAuthCache(env.target, leaked)).to.equal(401);
      expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: n.serviceAccount }))).to.equal(404);
      await eventsOnceRecorded(env.hostConfig(), 'default', n.request, 'Warning/ServiceAccountTampered');
    });

    it('does not let a DPUCluster that is gone block the deletion', async function () {
      const n = names();
      const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `doomed-${n.request}` });
      await env.createRequest(n.request, spec(n, { targetCluster: { name: cluster.name } }));
      await env.driver.reconcile('default', n.request);
      await env.hostConfig().makeApiClient(CustomObjectsApi)
        .deleteNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name: cluster.name });
      await env.deleteRequest(n.request);
      const { response } = await env.driver.reconcile('default', n.request);
      expect(response).to.include({ finalized: true });
      expect(await parent(n.request)).to.equal(undefined);
    });
  });

  describe("the curl examples of docs/operations.md (examples/hooks/*.json posted as they are)", function () {
    const post = async (file: string, path: string) => {
      const body = await readFile(new URL(`../../examples/hooks/${file}`, import.meta.url), 'utf8');
      const res = await fetch(`${env.plainUrl}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
      return { status: res.status, body: await res.json() as SyncResponse & CustomizeResponse };
    };
    const ready = (response: SyncResponse) => response.status.conditions?.find((c) => c.type === 'Ready');

    it('sync-kubeconfig.json returns a kubeconfig Secret for curl-sa that authenticates to the target, and is not Ready before the Secret is observed', async function () {
      const { status, body } = await post('sync-kubeconfig.json', '/sync');
      expect(status).to.equal(200);
      expect(await authenticatesAs(body.children[0] as V1Secret)).to.equal('system:serviceaccount:default:curl-sa');
      // A call by hand carries no child: nothing has written the Secret yet, and status says so.
      expect(ready(body), ready(body)?.message).to.include({ status: 'False', reason: 'Pending' });
      expect(ready(body)?.message).to.contain('waiting for Metacontroller to write secret default/curl-credential');
    });

    it('sync-tokenfile.json returns the four tokenFile keys', async function () {
      const { body } = await post('sync-tokenfile.json', '/sync');
      expect(Object.keys(body.children[0]?.data ?? {}).sort()).to.deep.equal(['KUBERNETES_CA_DATA', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'TOKEN_FILE']);
    });

    it('sync-invalid.json returns no Secret and an InvalidSpec condition naming both problems', async function () {
      const { status, body } = await post('sync-invalid.json', '/sync');
      expect(status).to.equal(200);
      expect(body.children).to.deep.equal([]);
      expect(ready(body)).to.include({ status: 'False', reason: 'InvalidSpec' });
      expect(ready(body)?.message).to.contain('spec.duration').and.contain('spec.secret.namespace');
    });

    it('customize.json names no related resource (the webhook watches DPUClusters itself)', async function () {
      const { status, body } = await post('customize.json', '/customize');
      expect(status).to.equal(200);
      expect(body).to.deep.equal({ relatedResources: [] });
    });

    it('finalize.json deletes curl-sa and answers finalized', async function () {
      await post('sync-kubeconfig.json', '/sync');
      const { body } = await post('finalize.json', '/finalize');
      expect(body).to.include({ finalized: true });
      expect(await apiErrorCode(targetCore().readNamespacedServiceAccount({ namespace: 'default', name: 'curl-sa' }))).to.equal(404);
    });
  });
});
