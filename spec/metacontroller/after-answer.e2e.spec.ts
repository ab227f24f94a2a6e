// What Metacontroller v4.17.2 does after an answer (issue 18, points 1 and 6), on real API
// servers: a Secret write the API server refuses (here a ValidatingAdmissionPolicy) still
// gets the answer's status written; children left out of an answer are deleted before the
// new ones are applied, each failure collected while the rest go on; under foreground
// deletion finalize keeps being called while another finalizer keeps the request. And how
// the webhook copes: SecretNotWritten without a 429 loop, Ready once the block is lifted,
// the old Secret kept through a rename, and a finalize that can be called again.
import { CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { KubeRestClient } from '../../server/kube/rest.js';
import { registerDpuCluster } from '../../harness/dpucluster.js';
import { startFaultProxy } from '../../harness/fault-proxy.js';
import { apiErrorCode, condition } from '../../harness/kube-helpers.js';
import { ChildManager, type Child, type ChildEvent, type Parent } from '../../harness/metacontroller/child-manager.js';
import { SyncError } from '../../harness/metacontroller/driver.js';
import { authenticatesAs, identityAfterAuthCache, identityOn, readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';
import { eventually } from '../../harness/eventually.js';
import { connectionOf } from '../../harness/connection.js';

/** Secrets with this label are refused at create and update. */
const refuseLabel = 'test.example/refuse';
/** Secrets with this label are refused at delete. */
const undeletableLabel = 'test.example/undeletable';
const policyName = 'refuse-labelled-secrets';
const admissionPath = '/apis/admissionregistration.k8s.io/v1';

describe('what Metacontroller does after an answer, and how the webhook copes (real API servers)', function () {
  let env: WebhookEnv;
  let host: KubeRestClient;
  let counter = 0;
  const fresh = () => `after-${++counter}`;
  const spec = (name: string, extra: Record<string, unknown> = {}) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: 'dpu-cplane-tenant1' }, type: 'kubeconfig',
    secret: { name: `${name}-cred` }, ...extra,
  });
  const refused = { metadata: { labels: { [refuseLabel]: 'yes' } } };
  const hostCore = () => env.hostConfig().makeApiClient(CoreV1Api);
  const failureOf = (run: Promise<unknown>) => run.then(() => undefined, (error: unknown) => error);

  /** Whether the API server refuses a Secret with `labels` now (a dry run: admission runs, nothing is stored). */
  const refusesSecret = (labels: Record<string, string>) => hostCore().createNamespacedSecret({
    namespace: 'default', dryRun: 'All', body: { metadata: { name: `probe-${randomUUID()}`, labels } },
  }).then(() => false, () => true);

  /** The API server loads a policy binding asynchronously: poll until it takes effect (or is gone). */
  const untilRefusing = async (wanted: boolean) => {
    await eventually(async () => await refusesSecret({ [refuseLabel]: 'yes' }) === wanted,
      `the admission policy has ${wanted ? 'taken effect' : 'gone away'}`, { timeoutMs: 20_000, intervalMs: 100 });
  };

  const block = async () => {
    await host.request('POST', `${admissionPath}/validatingadmissionpolicybindings`, {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: policyName }, spec: { policyName, validationActions: ['Deny'] },
    });
    await untilRefusing(true);
  };

  const unblock = async () => {
    await host.request('DELETE', `${admissionPath}/validatingadmissionpolicybindings/${policyName}`);
    await untilRefusing(false);
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    host = new KubeRestClient(connectionOf(env.hostConfig()), { timeoutMs: 10_000 });
    await host.request('POST', `${admissionPath}/validatingadmissionpolicies`, {
      apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy',
      metadata: { name: policyName },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['secrets'] }] },
        validations: [{
          expression: `request.operation == 'DELETE'
            ? !(has(oldObject.metadata.labels) && '${undeletableLabel}' in oldObject.metadata.labels)
            : !(has(object.metadata.labels) && '${refuseLabel}' in object.metadata.labels)`,
          message: 'refused by the test\'s admission policy',
        }],
      },
    });
  });

  after(async function () {
    this.timeout(60_000);
    host?.close();
    await env?.stop();
  });

  describe('the driver, as ManageChildren() does it', function () {
    const parent = (): Parent => ({
      apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest',
      metadata: { name: fresh(), namespace: 'default', uid: randomUUID() },
    });
    const manager = (events: ChildEvent[]) => new ChildManager(host, (namespace) => `/api/v1/namespaces/${namespace}/secrets`, 'Secret',
      'server-side-apply', 'InPlace', (event) => events.push(event));
    const secret = (name: string, labels: Record<string, string> = {}): Child =>
      ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default', labels }, type: 'Opaque', data: { key: 'dmFsdWU=' } });
    const observed = async (child: Child): Promise<Child> =>
      await host.request<Child>('POST', '/api/v1/namespaces/default/secrets', child);

    it('deletes the children an answer leaves out before it applies the new ones', async function () {
      const events: ChildEvent[] = [];
      const old = await observed(secret(`${fresh()}-old`));
      const result = await manager(events).manage(parent(), [old], [secret(`${fresh()}-new`)]);
      expect(result.errors).to.deep.equal([]);
      expect(events.map((event) => event.kind)).to.deep.equal(['deleted', 'created']);
    });

    it('collects a failed delete and a failed apply, and writes the rest', async function () {
      this.timeout(60_000);
      const events: ChildEvent[] = [];
      const stuck = await observed(secret(`${fresh()}-stuck`, { [undeletableLabel]: 'yes' }));
      const [refusedName, writtenName] = [`${fresh()}-refused`, `${fresh()}-written`];
      await block();
      try {
        const result = await manager(events).manage(parent(), [stuck], [secret(refusedName, { [refuseLabel]: 'yes' }), secret(writtenName)]);
        expect(result.errors.map((error) => error.message)).to.have.length(2);
        expect(result.errors[0]?.message).to.contain(`can't delete Secret default/${stuck.metadata.name}`);
        expect(result.errors[1]?.message).to.contain(`can't apply Secret default/${refusedName}`);
        expect(events).to.deep.equal([{ kind: 'created', name: writtenName }]);
        expect(await readSecret(env.hostConfig(), stuck.metadata.name!)).to.not.equal(undefined);
      } finally {
        await unblock();
        await host.request('DELETE', `/api/v1/namespaces/default/secrets/${stuck.metadata.name}`).catch(async () => {
          await host.request('PATCH', `/api/v1/namespaces/default/secrets/${stuck.metadata.name}`,
            { metadata: { labels: { [undeletableLabel]: null } } }, { contentType: 'application/merge-patch+json' });
          await host.request('DELETE', `/api/v1/namespaces/default/secrets/${stuck.metadata.name}`);
        });
      }
    });
  });

  describe('a Secret write the API server refuses (an admission policy here; a ResourceQuota or another owner alike)', function () {
    it('gets the status written all the same, says SecretNotWritten at the retry (no 429), and is Ready with a working Secret at the first sync once the block is lifted and the mint backoff has passed', async function () {
      this.timeout(90_000);
      const name = fresh();
      const callsBefore = env.driver.calls.length;
      await block();
      try {
        await env.createRequest(name, spec(name, refused));
        const failed = await failureOf(env.driver.reconcile('default', name));
        expect(failed).to.be.instanceOf(SyncError);
        expect((failed as SyncError).message).to.contain(`can't apply Secret default/${name}-cred`).and.to.contain('refused by the test\'s admission policy');
        // composite/controller.go: the answer's status lands although its Secret did not.
        const written = await env.driver.readParent('default', name);
        expect(written?.status?.issuedAt).to.equal((failed as SyncError).result?.response.status?.issuedAt).and.to.be.a('string');
        expect(await readSecret(env.hostConfig(), `${name}-cred`)).to.equal(undefined);

        // Metacontroller's retry, within the settle window where a cache lag would be waited for, and within the mint
        // backoff: no token is minted, so there is no Secret to write.
        const retried = await failureOf(env.driver.syncOnce('default', name));
        expect(retried).to.equal(undefined);
        const request = await env.driver.readParent('default', name);
        for (const type of ['SecretReconciled', 'Ready']) {
          expect(condition(request, type)).to.include({ status: 'False', reason: 'SecretNotWritten' });
        }
        expect(condition(request, 'Ready')?.message).to.contain(`could not write secret default/${name}-cred`)
          .and.to.contain('holds no token valid for this request');
        expect(env.driver.calls.slice(callsBefore).map((call) => call.statusCode)).to.not.include(429);
      } finally {
        await unblock();
      }

      const syncsBefore = env.driver.calls.filter((call) => call.hook === 'sync').length;
      env.clock.advance(6_000); // past the 5 s the next mint waits after one the Secret never showed
      try {
        await env.driver.reconcile('default', name);
      } finally {
        env.clock.reset();
      }
      // One retry writes the Secret; the sync its write enqueues sees it and says Ready.
      expect(env.driver.calls.filter((call) => call.hook === 'sync').length - syncsBefore).to.equal(2);
      const request = await env.driver.readParent('default', name);
      expect(condition(request, 'Ready')).to.include({ status: 'True', reason: 'Success' });
      const secret = await readSecret(env.hostConfig(), `${name}-cred`);
      expect(await authenticatesAs(secret!)).to.equal(`system:serviceaccount:default:${name}-sa`);
    });

    it('mints at most one token the Secret never shows: a retry within the backoff mints none, and each later mint revokes the one before', async function () {
      this.timeout(120_000);
      const name = fresh();
      const targetCore = env.target.adminKubeConfig().makeApiClient(CoreV1Api);
      const anchorsInTarget = async () => (await targetCore.listNamespacedSecret({
        namespace: 'default', labelSelector: `svc.dpu.nvidia.com/credential-request-name=${name},svc.dpu.nvidia.com/token-anchor=true`,
      })).items;
      /** Every token the webhook answered with, oldest first. */
      const answered: string[] = [];
      const sync = async () => {
        const failed = await failureOf(env.driver.syncOnce('default', name));
        if (failed !== undefined && !(failed instanceof SyncError)) throw failed;
        for (const child of (failed as SyncError | undefined)?.result?.response.children ?? []) answered.push(tokenIn(child as never));
      };
      await block();
      try {
        await env.createRequest(name, spec(name, refused));
        await sync(); // mints; the write is refused
        expect(answered).to.have.length(1);
        await sync(); // Metacontroller's retry at once
        expect(answered).to.have.length(1);
        expect(await anchorsInTarget()).to.have.length(1);
        const waiting = condition(await env.driver.readParent('default', name), 'Ready');
        expect(waiting).to.include({ status: 'False', reason: 'SecretNotWritten' });
        expect(waiting?.message).to.contain('no further token is minted before').and.to.contain('that one is revoked first');

        // A poke every 31 s (any change to the request brings a sync), each past the settle window and the backoff.
        try {
          for (let poke = 1; poke <= 5; poke += 1) {
            env.clock.advance(31_000);
            await sync();
            expect(await anchorsInTarget(), `anchors after poke ${poke}`).to.have.length(1);
          }
        } finally {
          env.clock.reset();
        }
        expect(answered.length).to.be.at.least(4);
        expect((await env.driver.readParent('default', name))?.status?.tokenAnchors ?? []).to.have.length.at.most(2);
        for (const token of answered.slice(0, -1)) expect(await identityAfterAuthCache(env.target, token)).to.equal(401);
        expect(await identityOn(env.target, answered.at(-1)!)).to.equal(`system:serviceaccount:default:${name}-sa`);
      } finally {
        await unblock();
      }
    });

    it('keeps the Secret under the old name through a rename whose new Secret is refused, and moves the token once it can be written', async function () {
      this.timeout(90_000);
      const name = fresh();
      await env.createRequest(name, spec(name));
      await env.driver.reconcile('default', name);
      const token = tokenIn((await readSecret(env.hostConfig(), `${name}-cred`))!);
      await block();
      try {
        await env.updateRequest(name, (r) => {
          Object.assign(r.spec as Record<string, unknown>, { secret: { name: `${name}-renamed` }, ...refused });
        });
        expect(await failureOf(env.driver.reconcile('default', name))).to.be.instanceOf(SyncError);
        expect(await failureOf(env.driver.syncOnce('default', name))).to.be.instanceOf(SyncError);
        // Metacontroller deletes what an answer leaves out before it applies the rest: the old Secret is still in the answer.
        const old = await readSecret(env.hostConfig(), `${name}-cred`);
        expect(tokenIn(old!)).to.equal(token);
        expect(await authenticatesAs(old!)).to.equal(`system:serviceaccount:default:${name}-sa`);
        const request = await env.driver.readParent('default', name);
        expect(condition(request, 'Ready')).to.include({ status: 'False', reason: 'SecretNotWritten' });
        expect(condition(request, 'Ready')?.message).to.contain(`could not write secret default/${name}-renamed`);
      } finally {
        await unblock();
      }
      await env.driver.reconcile('default', name);
      const renamed = await readSecret(env.hostConfig(), `${name}-renamed`);
      expect(tokenIn(renamed!)).to.equal(token);
      expect(await authenticatesAs(renamed!)).to.equal(`system:serviceaccount:default:${name}-sa`);
      expect(await readSecret(env.hostConfig(), `${name}-cred`)).to.equal(undefined);
      expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });
    });
  });

  describe('deletion', function () {
    it('under foreground deletion with another finalizer on the request: finalize keeps being called after finalized: true, answers finalized again, and writes nothing', async function () {
      this.timeout(90_000);
      const name = fresh();
      const proxy = await startFaultProxy(env.target);
      const keep = 'example.com/keep';
      try {
        const cluster = await registerDpuCluster(env.hostConfig(), env.target, { name: `recorded-${name}`, kubeconfigYaml: proxy.kubeconfigYaml() });
        await env.createRequest(name, spec(name, { targetCluster: { name: cluster.name } }));
        await env.driver.reconcile('default', name);
        await env.updateRequest(name, (r) => {
          r.metadata!.finalizers = [...r.metadata!.finalizers ?? [], keep];
        });
        await host.request('DELETE', `/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/default/dpuservicecredentialrequests/${name}`,
          { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Foreground' });
        expect((await env.driver.readParent('default', name))?.metadata?.finalizers).to.include('foregroundDeletion');

        const finalizesBefore = env.driver.calls.filter((call) => call.hook === 'finalize').length;
        const { hook, response } = await env.driver.reconcile('default', name);
        expect(hook).to.equal('finalize');
        expect(response.finalized).to.equal(true);
        // Once more after ours was removed: the removal is an update of a deleting request, which enqueues it.
        expect(env.driver.calls.filter((call) => call.hook === 'finalize').length - finalizesBefore).to.equal(2);
        const parent = await env.driver.readParent('default', name);
        expect(parent?.metadata?.finalizers).to.include(keep).and.not.include(env.driver.finalizer);
        expect(await apiErrorCode(env.target.adminKubeConfig().makeApiClient(CoreV1Api)
          .readNamespacedServiceAccount({ namespace: 'default', name: `${name}-sa` }))).to.equal(404);
        // The answer had no children, but the garbage collector owns them under foreground deletion (and there is none here).
        expect(await readSecret(env.hostConfig(), `${name}-cred`)).to.not.equal(undefined);

        // As at every resync while `keep` holds the request.
        proxy.requests.length = 0;
        const metacontrollerBefore = { ...env.driver.api.calls };
        const again = await env.driver.syncOnce('default', name);
        expect(again.hook).to.equal('finalize');
        expect(again.response.finalized).to.equal(true);
        expect(env.driver.calls.at(-1)).to.include({ hook: 'finalize', statusCode: 200 });
        expect(proxy.requests.filter((call) => call.method !== 'GET')).to.deep.equal([]);
        const writes = Object.entries(env.driver.api.calls).filter(([verb, count]) => verb !== 'GET' && count !== (metacontrollerBefore[verb] ?? 0));
        expect(writes).to.deep.equal([]);
        expect((await env.driver.readParent('default', name))?.metadata?.resourceVersion).to.equal(parent?.metadata?.resourceVersion);
      } finally {
        await env.updateRequest(name, (r) => {
          r.metadata!.finalizers = [];
        }).catch(() => undefined);
        await proxy.close();
      }
    });
  });
});
