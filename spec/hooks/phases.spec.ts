// Each phase of the sync and finalize hooks, and each way it fails, against the in-memory
// clusters of fake-clusters.ts: no API server, no network. What the API servers themselves
// do is tested end to end (sync.e2e.spec.ts and the others).
import { expect } from 'chai';
import { anchorNameFor } from '../../server/credential/token-anchors.js';
import { reasons } from '../../server/credential/status.js';
import { TargetClusterNotReadyError } from '../../server/kube/clusters.js';
import { InvalidKubeconfigError } from '../../server/kube/kubeconfig.js';
import { KubeApiError, KubeUnreachableError } from '../../server/kube/rest.js';
import { NamespaceMissingError, ServiceAccountInUseError } from '../../server/kube/service-accounts.js';
import { finalizeGiveUpAfterMs } from '../../server/hooks/finalize.js';
import { outcomeReasons } from '../../server/hooks/outcome.js';
import { requestNamespace, World } from './world.js';

const unreachable = () => new KubeUnreachableError('https://api.example:6443', 'connect ECONNREFUSED');
const apiError = (statusCode: number, retryAfterSeconds?: number) =>
  new KubeApiError(statusCode, `HTTP${statusCode}`, `POST /api/v1/...: refused`, retryAfterSeconds);

/** A request on a DPUCluster in its own namespace, and the target of that cluster. */
function onDpuCluster() {
  const world = new World({ targetCluster: { name: 'dpu-cplane' } });
  const target = world.clusters.addDpuCluster(requestNamespace, 'dpu-cplane');
  return { world, target };
}

/** The children of an answer that kept what Metacontroller reported. */
const childNames = (outcome: { response: { children?: { metadata?: { name?: string } }[] } }) =>
  (outcome.response.children ?? []).map((child) => child.metadata?.name);

/** Asks for a forced rotation by the request's rotate annotation. */
const rotate = (world: World, value: string) => {
  world.parent = { ...world.parent, metadata: { ...world.parent.metadata, annotations: { 'svc.dpu.nvidia.com/rotate': value } } };
};

/**
 * After a sync that minted under the next anchor name (an answer Metacontroller never applied), that name
 * is handed to a stranger: whoever knows the request's UID and the held anchor can work it out and take it.
 */
function handNextNameToStranger(target: ReturnType<typeof onDpuCluster>['target'], heldKey: string | undefined): void {
  const taken = [...target.anchors.keys()].find((key) => key !== heldKey)!;
  target.anchors.set(taken, { ...target.anchors.get(taken)!, uid: 'stranger-uid', madeFor: '' });
}

describe('sync phases (in-memory clusters)', function () {
  describe('the happy path', function () {
    it('mints, and once the Secret is seen, reuses the token without a call to the target', async function () {
      const { world, target } = onDpuCluster();
      const minted = await world.sync();
      expect(minted.decision).to.equal('minted');
      expect(target.calls).to.deep.equal(['ensureServiceAccount', 'createAnchor', 'requestToken']);
      world.apply(minted);
      const seen = await world.sync();
      expect(seen.decision).to.equal('reused');
      expect(world.condition(seen, 'Ready')).to.include({ status: 'True', reason: reasons.success });
      expect(target.calls.filter((call) => call !== 'ensureServiceAccount')).to.have.length(2);
    });

    it('asks for no early resync while the Secret it writes is Pending: that Secret\'s event brings the next sync', async function () {
      const { world } = onDpuCluster();
      const minted = await world.sync();
      expect(world.condition(minted, 'SecretReconciled')).to.include({ status: 'False', reason: reasons.pending });
      world.apply(minted);
      const seen = await world.sync();
      // Both wait for the refresh (80% of the lifetime), far beyond any retry backoff (at most 300 s).
      expect(minted.response.resyncAfterSeconds).to.be.greaterThan(300);
      expect(minted.response.resyncAfterSeconds).to.be.within(seen.response.resyncAfterSeconds - 1, seen.response.resyncAfterSeconds + 1);
    });
  });

  describe('grants', function () {
    it('keeps the Secret and waits when the grant check cannot reach the host (HostClusterUnreachable)', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      // A DPUCluster in another namespace needs a grant: the check asks the host.
      world.clusters.addDpuCluster('provider', 'shared');
      world.setSpec({ targetCluster: { name: 'shared', namespace: 'provider' } });
      world.clusters.host.failing.set('isAllowed', unreachable());
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.hostClusterUnreachable });
      expect(world.condition(outcome, 'SecretReconciled')).to.include({ reason: reasons.pending, message: 'waiting for the grant check' });
      expect(childNames(outcome)).to.deep.equal(['cred']);
      expect(target.calls).to.not.include('deleteAnchor');
    });

    it('refuses a reference without a grant, drops the Secret and takes back what was issued (ReferenceNotPermitted)', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.clusters.host.refused.add('dpuclusters/provider/shared');
      world.clusters.addDpuCluster('provider', 'shared');
      world.setSpec({ targetCluster: { name: 'shared', namespace: 'provider' } });
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.referenceNotPermitted });
      expect(outcome.response.children).to.deep.equal([]);
      expect(target.anchors.size).to.equal(0);
      expect(target.serviceAccounts.size).to.equal(0);
    });
  });

  describe('validate', function () {
    it('answers an invalid spec with InvalidSpec, keeps the Secret and calls no target', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      const callsBefore = target.calls.length;
      world.setSpec({ type: 'yaml' });
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'invalid', reason: reasons.invalidSpec });
      expect(childNames(outcome)).to.deep.equal(['cred']);
      expect(outcome.response.status?.secret).to.equal(`${requestNamespace}/cred`);
      expect(target.calls.length).to.equal(callsBefore);
    });

    it('refuses a duration above the policy with DurationNotPermitted and mints nothing', async function () {
      const { world, target } = onDpuCluster();
      world.setSpec({ duration: '1000h' });
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'invalid', reason: reasons.durationNotPermitted });
      expect(target.calls).to.deep.equal([]);
    });

    it('leaves a Secret of that name that is not the request\'s alone (SecretNotOwned)', async function () {
      const { world, target } = onDpuCluster();
      world.clusters.host.secrets.set(`${requestNamespace}/cred`, { metadata: { name: 'cred', namespace: requestNamespace } });
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.secretNotOwned });
      expect(outcome.response.children).to.deep.equal([]);
      expect(target.calls).to.deep.equal([]);
    });

    it('refuses a Secret handed over with the adopt annotation that is immutable or of another type (SecretNotWritable), minting nothing', async function () {
      for (const [shape, says] of [[{ immutable: true }, 'it is immutable'], [{ type: 'kubernetes.io/tls' }, 'it is of type kubernetes.io/tls']] as const) {
        const { world, target } = onDpuCluster();
        world.clusters.host.secrets.set(`${requestNamespace}/cred`, {
          metadata: { name: 'cred', namespace: requestNamespace, annotations: { 'svc.dpu.nvidia.com/adopt-for-request': 'req' } }, ...shape,
        });
        const outcome = await world.sync();
        expect(outcome).to.include({ decision: 'error', reason: reasons.secretNotWritable });
        expect(world.condition(outcome, 'Ready')?.message).to.contain(`secret ${requestNamespace}/cred cannot be written: ${says}`);
        expect(outcome.response.children).to.deep.equal([]);
        expect(target.calls).to.deep.equal([]);
      }
    });

    it('refuses its own child once it is immutable (SecretNotWritable), and keeps it as it is', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.children.set('cred', { ...world.children.get('cred')!, immutable: true });
      const calls = target.calls.length;
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.secretNotWritable });
      expect(childNames(outcome)).to.deep.equal(['cred']);
      expect(target.calls.slice(calls).filter((call) => call !== 'deleteAnchor')).to.deep.equal([]);
    });

    it('waits when the Secret\'s owner cannot be read (HostClusterUnreachable on SecretReconciled)', async function () {
      const { world, target } = onDpuCluster();
      world.clusters.host.failing.set('readSecretMetadata', apiError(500));
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.pending });
      expect(world.condition(outcome, 'SecretReconciled')).to.include({ reason: reasons.hostClusterUnreachable });
      expect(world.condition(outcome, 'ServiceAccountReconciled')?.message).to.equal('waiting for the host cluster');
      expect(target.calls).to.deep.equal([]);
    });
  });

  describe('freshness', function () {
    it('answers "behind" (HTTP 429) to children older than the token issued last', async function () {
      const { world } = onDpuCluster();
      await world.settle();
      const old = new Map(world.children);
      world.setSpec({ duration: '2h' });
      world.apply(await world.sync());
      world.children = old;
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'behind', reason: outcomeReasons.behind });
    });
  });

  describe('target', function () {
    it('drops the Secret of a DPUCluster that is gone and forgets its client (TargetClusterNotFound)', async function () {
      const { world } = onDpuCluster();
      await world.settle();
      world.clusters.removeDpuCluster(requestNamespace, 'dpu-cplane');
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.targetClusterNotFound });
      expect(outcome.response.children).to.deep.equal([]);
      expect(world.clusters.forgotten).to.deep.equal([`${requestNamespace}/dpu-cplane`]);
    });

    /** The host calls a sync made to find its DPUCluster. */
    const lookups = (world: World) => world.clusters.host.calls.filter((call) => call === 'cachedDpuCluster' || call === 'readDpuCluster');

    it('takes the DPUCluster from the watch when it holds it: no API call', async function () {
      const { world } = onDpuCluster();
      const outcome = await world.sync();
      expect(outcome.decision).to.equal('minted');
      expect(lookups(world)).to.deep.equal(['cachedDpuCluster']);
    });

    it('takes the DPUCluster from the related objects when an older CompositeController sends them, before the watch', async function () {
      const { world } = onDpuCluster();
      world.related = true;
      world.clusters.host.watchedDpuClusters.clear();
      const outcome = await world.sync();
      expect(outcome.decision).to.equal('minted');
      expect(lookups(world)).to.deep.equal([]);
    });

    it('reads a DPUCluster the watch does not hold yet (made a moment ago) with a GET, and uses it', async function () {
      const world = new World({ targetCluster: { name: 'dpu-new' } });
      const target = world.clusters.addDpuCluster(requestNamespace, 'dpu-new', 'dpu-new-uid', { watched: false });
      const outcome = await world.sync();
      expect(outcome.decision).to.equal('minted');
      expect(lookups(world)).to.deep.equal(['cachedDpuCluster', 'readDpuCluster']);
      expect(target.calls).to.include('requestToken');
    });

    it('says TargetClusterNotFound only when the GET after a cache miss finds nothing (404)', async function () {
      const world = new World({ targetCluster: { name: 'dpu-none' } });
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.targetClusterNotFound });
      expect(lookups(world)).to.deep.equal(['cachedDpuCluster', 'readDpuCluster']);
    });

    it('takes a DPUCluster the watch holds with a deletionTimestamp as gone, without a GET', async function () {
      const { world } = onDpuCluster();
      await world.settle();
      const key = `${requestNamespace}/dpu-cplane`;
      const cached = world.clusters.host.watchedDpuClusters.get(key)!;
      world.clusters.host.watchedDpuClusters.set(key, { ...cached, metadata: { ...cached.metadata, deletionTimestamp: world.now().toISOString() } });
      world.clusters.host.calls.length = 0;
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.targetClusterNotFound });
      expect(lookups(world)).to.deep.equal(['cachedDpuCluster']);
    });

    it('keeps the Secret of the old cluster when the new targetCluster does not exist (a typo)', async function () {
      const { world } = onDpuCluster();
      await world.settle();
      world.setSpec({ targetCluster: { name: 'dpu-cplnae' } });
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.targetClusterNotFound);
      expect(childNames(outcome)).to.deep.equal(['cred']);
      expect(world.condition(outcome, 'Ready')?.message).to.include(`the Secret for ${requestNamespace}/dpu-cplane is kept`);
    });

    for (const [kind, error, reason] of [
      ['no kubeconfig yet', new TargetClusterNotReadyError('DPUCluster tenant/dpu-cplane has no spec.kubeconfig yet'), reasons.targetClusterNotReady],
      ['a broken kubeconfig', new InvalidKubeconfigError('the super-admin.conf of Secret tenant/x is not base64'), reasons.invalidTargetKubeconfig],
      ['the host unreachable while its kubeconfig Secret is read', unreachable(), reasons.hostClusterUnreachable],
    ] as const) {
      it(`keeps the Secret and reports ${reason} for ${kind}`, async function () {
        const { world } = onDpuCluster();
        await world.settle();
        world.clusters.host.failing.set('forDpuCluster', error);
        const outcome = await world.sync();
        expect(outcome).to.include({ decision: 'error', reason });
        expect(world.condition(outcome, 'SecretReconciled')?.message).to.equal('waiting for the target cluster');
        expect(childNames(outcome)).to.deep.equal(['cred']);
      });
    }
  });

  describe('service account', function () {
    it('reports NamespaceNotFound, saying what an omitted namespace means here and in DPF', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('ensureServiceAccount', new NamespaceMissingError({ namespace: requestNamespace, name: 'sa' }, { namespace: requestNamespace, name: 'req' }));
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.namespaceNotFound });
      const message = world.condition(outcome, 'ServiceAccountReconciled')?.message ?? '';
      expect(message).to.include(`namespace ${requestNamespace} does not exist in the target cluster`);
      expect(message).to.include('"default"').and.to.include('docs/migrating.md');
    });

    it('says nothing of omitted namespaces when the spec named another namespace', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('ensureServiceAccount', new NamespaceMissingError({ namespace: 'other', name: 'sa' }, { namespace: requestNamespace, name: 'req' }));
      const outcome = await world.sync();
      expect(world.condition(outcome, 'ServiceAccountReconciled')?.message).to.not.include('default');
    });

    it('never uses a ServiceAccount made for someone else (ServiceAccountConflict)', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('ensureServiceAccount', new ServiceAccountInUseError({ namespace: requestNamespace, name: 'sa' }));
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.serviceAccountConflict);
      expect(world.condition(outcome, 'ServiceAccountReconciled')?.message).to.include('is already in use');
      expect(target.calls).to.deep.equal(['ensureServiceAccount']);
    });

    it('keeps the Secret when the ServiceAccount create is refused (ServiceAccountReconcileFailed), honouring Retry-After', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.setSpec({ serviceAccount: { name: 'sa-2' } });
      target.failing.set('ensureServiceAccount', apiError(403, 120));
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.serviceAccountReconcileFailed });
      expect(outcome.response.resyncAfterSeconds).to.be.at.least(120);
      expect(childNames(outcome)).to.deep.equal(['cred']);
      expect(world.clusters.forgotten).to.deep.equal([]);
    });

    it('forgets the target\'s credentials when it answers 401', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('ensureServiceAccount', apiError(401));
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.serviceAccountReconcileFailed);
      expect(world.clusters.forgotten).to.deep.equal([`${requestNamespace}/dpu-cplane`]);
    });

    it('keeps the Secret when the target is unreachable (TargetClusterUnreachable)', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      target.failing.set('ensureServiceAccount', unreachable());
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.targetClusterUnreachable);
      expect(world.condition(outcome, 'ServiceAccountReconciled')?.message).to.include('the current Secret is kept');
      expect(childNames(outcome)).to.deep.equal(['cred']);
    });
  });

  describe('token (keep or mint)', function () {
    it('reports TokenRequestFailed when the anchor cannot be made, and records no anchor', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('createAnchor', apiError(500));
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.tokenRequestFailed });
      expect(world.condition(outcome, 'ServiceAccountReconciled')).to.include({ status: 'True' });
      expect(outcome.response.status?.tokenAnchors).to.equal(undefined);
      expect(outcome.response.status?.serviceAccounts?.map((entry) => entry.serviceAccount)).to.deep.equal([`${requestNamespace}/sa`]);
    });

    it('records the anchor of a failed mint as expired, so a later sync deletes it', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('requestToken', apiError(500));
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.tokenRequestFailed);
      const anchors = outcome.response.status?.tokenAnchors ?? [];
      expect(anchors).to.have.length(1);
      expect(anchors[0]?.expiresAt).to.equal(world.now().toISOString().replace(/\.\d{3}Z$/, 'Z'));
      world.apply(outcome);
      const failedUid = [...target.anchorStates.values()][0]?.uid;
      target.failing.delete('requestToken');
      world.advance(1_000);
      await world.sync();
      // The next mint needs the same anchor name (mint-limit.ts): it deletes the failed one by its UID first.
      expect(target.calls).to.include('revokeAnchor');
      expect([...target.anchorStates.values()].map((state) => state.uid)).to.not.include(failedUid);
    });

    it('forgets the target\'s credentials when the mint answers 401', async function () {
      const { world, target } = onDpuCluster();
      target.failing.set('requestToken', apiError(401));
      await world.sync();
      expect(world.clusters.forgotten).to.deep.equal([`${requestNamespace}/dpu-cplane`]);
    });

    it('reports TargetClusterUnreachable when the mint cannot reach the target, keeping the Secret', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.setSpec({ duration: '2h' });
      target.failing.set('requestToken', unreachable());
      const outcome = await world.sync();
      expect(world.condition(outcome, 'SecretReconciled')).to.include({ reason: reasons.targetClusterUnreachable });
      expect(childNames(outcome)).to.deep.equal(['cred']);
    });

    it('throws away a token minted for another ServiceAccount of that name (ServiceAccountConflict)', async function () {
      const { world, target } = onDpuCluster();
      target.mintedForUid = 'someone-elses-uid';
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.serviceAccountConflict);
      expect(world.condition(outcome, 'SecretReconciled')?.message).to.include('was replaced while its token was minted');
      expect(outcome.response.children).to.deep.equal([]);
    });
  });

  describe('revoke', function () {
    it('reports TokenRevocationFailed while the anchor of a rotated-away token cannot be deleted', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.parent = { ...world.parent, metadata: { ...world.parent.metadata, annotations: { 'svc.dpu.nvidia.com/rotate': '1' } } };
      target.failing.set('deleteAnchor', apiError(500));
      const outcome = await world.settle();
      expect(outcome.reason).to.equal(outcomeReasons.tokenStillFresh);
      expect(world.condition(outcome, 'ServiceAccountReconciled')).to.include({ status: 'False', reason: reasons.tokenRevocationFailed });
      expect(target.anchors.size).to.equal(2);
      target.failing.delete('deleteAnchor');
      const retried = await world.sync();
      expect(world.condition(retried, 'Ready')).to.include({ status: 'True' });
      expect(target.anchors.size).to.equal(1);
    });

    it('reports ServiceAccountCleanupFailed while the previous ServiceAccount cannot be deleted', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.setSpec({ serviceAccount: { name: 'sa-2' } });
      target.failing.set('deleteServiceAccount', unreachable());
      const outcome = await world.sync();
      expect(outcome.decision).to.equal('minted');
      expect(world.condition(outcome, 'ServiceAccountReconciled')).to.include({ reason: reasons.serviceAccountCleanupFailed });
      expect(outcome.response.status?.serviceAccounts?.map((entry) => entry.serviceAccount)).to.have.members([`${requestNamespace}/sa`, `${requestNamespace}/sa-2`]);
    });
  });

  describe('render', function () {
    it('keeps the Secret under the old name until the new one is seen holding the token (secret.name changed)', async function () {
      const { world } = onDpuCluster();
      await world.settle();
      world.setSpec({ secret: { name: 'cred-2' } });
      const renamed = await world.sync();
      expect(renamed.decision).to.equal('reused');
      expect(childNames(renamed)).to.deep.equal(['cred-2', 'cred']);
      world.apply(renamed);
      const seen = await world.sync();
      expect(childNames(seen)).to.deep.equal(['cred-2']);
    });

    it('reports a failure during a rename against the Secret under the spec\'s name', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      world.setSpec({ secret: { name: 'cred-2' } });
      world.apply(await world.sync());
      target.failing.set('ensureServiceAccount', unreachable());
      // Metacontroller lists the old Secret first: the status still names the new one.
      world.children = new Map([...world.children].reverse());
      const outcome = await world.sync();
      expect(outcome.reason).to.equal(reasons.targetClusterUnreachable);
      expect(outcome.response.status?.secret).to.equal(`${requestNamespace}/cred-2`);
    });
  });
});

describe('finalize phases (in-memory clusters)', function () {
  it('deletes the ServiceAccount and says so (ServiceAccountDeleted)', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    const outcome = await world.finalize();
    expect(outcome).to.include({ decision: 'finalized', reason: outcomeReasons.serviceAccountDeleted });
    expect(outcome.response.finalized).to.equal(true);
    expect(target.serviceAccounts.size).to.equal(0);
    expect(outcome.events?.map((event) => event.reason)).to.deep.equal(['ServiceAccountDeleted']);
  });

  it('finds the ServiceAccount\'s cluster through the watch, else a GET, and takes a 404 as the ServiceAccount gone with it', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    world.clusters.host.watchedDpuClusters.clear();
    world.clusters.host.calls.length = 0;
    const viaGet = await world.finalize();
    expect(viaGet.reason).to.equal(outcomeReasons.serviceAccountDeleted);
    expect(world.clusters.host.calls).to.include('readDpuCluster');
    expect(target.serviceAccounts.size).to.equal(0);

    const gone = onDpuCluster();
    await gone.world.settle();
    gone.world.clusters.removeDpuCluster(requestNamespace, 'dpu-cplane');
    const outcome = await gone.world.finalize();
    expect(outcome).to.include({ decision: 'finalized', reason: outcomeReasons.nothingLeftToDelete });
    expect(gone.target.calls).to.not.include('deleteServiceAccount');
  });

  it('has nothing to do for a request that never made a ServiceAccount (NoServiceAccount)', async function () {
    const world = new World({ type: 'yaml' });
    const outcome = await world.finalize();
    expect(outcome).to.include({ decision: 'finalized', reason: outcomeReasons.noServiceAccount });
  });

  it('waits for a target that is down (ServiceAccountDeleteFailed), keeping the children', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    target.failing.set('deleteServiceAccount', unreachable());
    const outcome = await world.finalize();
    expect(outcome).to.include({ decision: 'error', reason: outcomeReasons.serviceAccountDeleteFailed });
    expect(outcome.response.finalized).to.equal(false);
    expect(childNames(outcome)).to.deep.equal(['cred']);
  });

  it('gives up on a cluster that cannot be used once finalizeGiveUpAfterMs has passed (GaveUpOnServiceAccount)', async function () {
    const { world } = onDpuCluster();
    await world.settle();
    world.parent = { ...world.parent, metadata: { ...world.parent.metadata, deletionTimestamp: world.now().toISOString() } };
    world.clusters.host.failing.set('forDpuCluster', new TargetClusterNotReadyError('no kubeconfig'));
    expect((await world.finalize()).reason).to.equal(outcomeReasons.serviceAccountDeleteFailed);
    world.advance(finalizeGiveUpAfterMs + 1);
    const outcome = await world.finalize();
    expect(outcome).to.include({ decision: 'finalized', reason: outcomeReasons.gaveUpOnServiceAccount });
  });

  describe('mint limits (the anchors in the target, not the status, decide)', function () {
    /** Metacontroller writes the status of an answer, but the Secret never shows (a refused write, a Secret never adopted). */
    const statusOnly = (world: World, outcome: Awaited<ReturnType<World['sync']>>) => {
      world.parent = { ...world.parent, status: outcome.response.status };
    };

    it('keeps at most one token the Secret never showed: the next mint waits out the backoff and revokes it first', async function () {
      const { world, target } = onDpuCluster();
      statusOnly(world, await world.sync());
      expect(target.anchors.size).to.equal(1);
      world.advance(31_000); // past the settle window: what is observed is the truth
      const minted = await world.sync();
      expect(minted.decision).to.equal('minted');
      expect(target.calls.slice(-5)).to.deep.equal(['createAnchor', 'readAnchor', 'revokeAnchor', 'createAnchor', 'requestToken']);
      expect(target.anchors.size).to.equal(1);
      statusOnly(world, minted);
      const callsBefore = target.calls.length;
      world.advance(1_000); // within the 5 s the next mint waits
      const held = await world.sync();
      expect(held).to.include({ decision: 'error', reason: reasons.secretNotWritten });
      expect(world.condition(held, 'Ready')?.message).to.contain('no further token is minted before');
      expect(held.response.resyncAfterSeconds).to.be.within(1, 5);
      expect(target.calls.slice(callsBefore)).to.not.include('requestToken');
      expect(target.anchors.size).to.equal(1);
    });

    it('holds a forced rotation back by the target\'s anchor of the last one when the status read lacks lastForcedRotationAt', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      const stale = world.parent.status;
      world.parent = { ...world.parent, metadata: { ...world.parent.metadata, annotations: { 'svc.dpu.nvidia.com/rotate': '1' } } };
      const rotated = await world.sync();
      expect(rotated.decision).to.equal('minted');
      world.apply(rotated);
      // The next sync reads rotation 2 with the status from before the first rotation (Metacontroller's cache lags).
      world.parent = { ...world.parent, status: stale, metadata: { ...world.parent.metadata, annotations: { 'svc.dpu.nvidia.com/rotate': '2' } } };
      world.advance(1_000);
      const held = await world.sync();
      expect(held.decision).to.equal('reused');
      expect(held.response.status?.forcedRotationAllowedAt).to.equal(new Date(world.nowMs - 1_000 + 60_000).toISOString().replace('.000Z', 'Z'));
      expect(target.calls.filter((call) => call === 'requestToken')).to.have.length(2);
      world.advance(60_000);
      expect((await world.sync()).decision).to.equal('minted');
    });

    it('still revokes the held token at a forced rotation whose anchor name a stranger\'s Secret took first', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      const [heldKey] = [...target.anchors.keys()];
      rotate(world, '1');
      const probe = await world.sync();
      handNextNameToStranger(target, heldKey);
      expect(probe.decision).to.equal('minted');
      // Metacontroller never applied that answer: the Secret still holds the first token, and the status is the old one.
      world.advance(61_000);
      rotate(world, '2');
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.tokenRequestFailed });
      expect(world.condition(outcome, 'Ready')?.message).to.contain('revoked all the same');
      expect(target.anchors.has(heldKey!), 'the held anchor').to.equal(false);
      expect([...target.anchors.values()].map((state) => state.uid)).to.include('stranger-uid');
    });

    it('never says the held token is revoked when its anchor was left standing (relabelled, no UID on record: unproven)', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      const [heldKey] = [...target.anchors.keys()];
      rotate(world, '1');
      await world.sync();
      handNextNameToStranger(target, heldKey);
      // The held anchor lost its labels, and the status (an older version's) records no UID to delete it by.
      target.anchors.set(heldKey!, { ...target.anchors.get(heldKey!)!, madeFor: '' });
      const status = world.parent.status ?? {};
      world.parent = { ...world.parent, status: { ...status, tokenAnchors: (status.tokenAnchors ?? []).map(({ anchorUID: _uid, ...entry }) => entry) } };
      world.advance(61_000);
      rotate(world, '2');
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.tokenRequestFailed });
      expect(target.anchors.has(heldKey!), 'the held anchor').to.equal(true);
      expect(world.condition(outcome, 'SecretReconciled')?.message).to.contain('the current Secret is kept').and.not.contain('revoked all the same');
    });

    it('lets no anchor the status does not record hold a forced rotation back: the token it replaces is revoked all the same', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      const [heldKey] = [...target.anchors.keys()];
      const next = `${requestNamespace}/${anchorNameFor('sa', 'req-uid', heldKey!.split('/')[1])}`;
      // A token's holder who may create Secrets there makes the next anchor's name look like a fresh forced rotation of this request.
      target.anchors.set(next, { uid: 'holder-made', madeFor: `${requestNamespace}/req`, createdAt: world.now(), forcedRotation: true });
      world.parent = { ...world.parent, metadata: { ...world.parent.metadata, annotations: { 'svc.dpu.nvidia.com/rotate': '1' } } };
      const callsBefore = target.calls.length;
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.tokenRequestFailed });
      expect(world.condition(outcome, 'Ready')?.message).to.contain('is not on this request\'s record');
      expect(world.condition(outcome, 'Ready')?.message).to.contain('revoked all the same');
      expect(target.anchors.has(heldKey!), 'the held anchor').to.equal(false);
      expect(target.calls.slice(callsBefore)).to.not.include('requestToken', 'nothing minted while the name is held');
    });

    it('mints no token it could not record: TokenLimitReached when status.tokenAnchors is full of live tokens', async function () {
      const { world, target } = onDpuCluster();
      await world.settle();
      const live = world.parent.status!.tokenAnchors![0]!;
      const full = [live, ...Array.from({ length: 31 }, (_, i) => ({ ...live, anchor: `kept-${i}` }))];
      world.parent = { ...world.parent, status: { ...world.parent.status, tokenAnchors: full },
        metadata: { ...world.parent.metadata, annotations: { 'svc.dpu.nvidia.com/rotate': '1' } } };
      const callsBefore = target.calls.length;
      const outcome = await world.sync();
      expect(outcome).to.include({ decision: 'error', reason: reasons.tokenLimitReached });
      expect(childNames(outcome)).to.deep.equal(['cred']);
      expect(target.calls.slice(callsBefore)).to.not.include('createAnchor');
      expect(outcome.response.status?.tokenAnchors).to.have.length(32);
    });
  });

  it('lets a bug propagate (HTTP 500) rather than answer it as a retry', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    target.failing.set('deleteServiceAccount', new TypeError('a bug'));
    let thrown: unknown;
    try {
      await world.finalize();
    } catch (error) {
      thrown = error;
    }
    expect(thrown).to.be.instanceOf(TypeError);
  });
});

describe('what the webhook made is deleted by its UID (tampering; a recreated DPUCluster)', function () {
  const reasonsOf = (outcome: { events?: { type: string; reason: string }[] }) => (outcome.events ?? []).map((event) => `${event.type}/${event.reason}`);

  it('deletes a relabelled anchor by its UID at a rotation: revoked, with a Warning and a note on ServiceAccountReconciled', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    const [oldAnchor] = [...target.anchors.keys()];
    target.anchors.get(oldAnchor!)!.madeFor = '';
    rotate(world, '1');
    world.apply(await world.sync());
    const outcome = await world.sync();
    expect(target.anchors.has(oldAnchor!)).to.equal(false);
    expect(outcome.response.status?.previousTokensRevokedAt).to.be.a('string');
    expect(reasonsOf(outcome)).to.include.members(['Normal/TokensRevoked', 'Warning/AnchorTampered']);
    expect(world.condition(outcome, 'ServiceAccountReconciled')).to.include({ status: 'True' });
    expect(world.condition(outcome, 'ServiceAccountReconciled')?.message).to.contain(`tampering: token anchor ${oldAnchor}`);
  });

  it('never reports revoked a relabelled anchor of no recorded UID (an older status): kept on record, TamperingDetected, until it expires', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    const [oldAnchor] = [...target.anchors.keys()];
    target.anchors.get(oldAnchor!)!.madeFor = '';
    rotate(world, '1');
    world.apply(await world.sync());
    const olderStatus = world.parent.status!;
    world.parent = { ...world.parent, status: { ...olderStatus, tokenAnchors: olderStatus.tokenAnchors!.map(({ anchorUID: _uid, ...entry }) => entry) } };
    const outcome = await world.sync();
    expect(target.anchors.has(oldAnchor!)).to.equal(true);
    expect(outcome.response.status?.previousTokensRevokedAt).to.equal(undefined);
    expect(reasonsOf(outcome)).to.not.include('Normal/TokensRevoked');
    expect(world.condition(outcome, 'Ready')).to.include({ status: 'False', reason: reasons.tamperingDetected });
    expect(world.condition(outcome, 'ServiceAccountReconciled')?.message).to.contain('its token may still work');
    expect(outcome.response.status?.tokenAnchors?.map((entry) => `${requestNamespace}/${entry.anchor}`)).to.include(oldAnchor);

    world.apply(outcome);
    world.advance(3_600_000 + 1_000);
    const expired = await world.settle();
    expect(expired.response.status?.tokenAnchors?.map((entry) => `${requestNamespace}/${entry.anchor}`)).to.not.include(oldAnchor);
    expect(world.condition(expired, 'Ready')).to.include({ status: 'True' });
  });

  it('deletes a relabelled ServiceAccount by its UID at finalize, with a Warning; without a recorded UID it is left alone', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    target.serviceAccounts.get(`${requestNamespace}/sa`)!.madeFor = '';
    const outcome = await world.finalize();
    expect(target.serviceAccounts.size).to.equal(0);
    expect(outcome.reason).to.equal(outcomeReasons.serviceAccountDeleted);
    expect(reasonsOf(outcome)).to.include.members(['Normal/ServiceAccountDeleted', 'Warning/ServiceAccountTampered']);

    const older = onDpuCluster();
    await older.world.settle();
    older.target.serviceAccounts.get(`${requestNamespace}/sa`)!.madeFor = '';
    const status = older.world.parent.status!;
    older.world.parent = { ...older.world.parent, status: { ...status, serviceAccounts: status.serviceAccounts!.map(({ serviceAccountUID: _uid, ...entry }) => entry) } };
    expect((await older.world.finalize()).reason).to.equal(outcomeReasons.nothingLeftToDelete);
    expect(older.target.serviceAccounts.size).to.equal(1);
  });

  it('deletes a relabelled ServiceAccount and anchor by their UIDs when a grant is withdrawn', async function () {
    const world = new World({ targetCluster: { name: 'shared', namespace: 'provider' } });
    const target = world.clusters.addDpuCluster('provider', 'shared');
    await world.settle();
    for (const made of [...target.serviceAccounts.values(), ...target.anchors.values()]) made.madeFor = '';
    world.clusters.host.refused.add('dpuclusters/provider/shared');
    const outcome = await world.sync();
    expect(outcome.reason).to.equal(reasons.referenceNotPermitted);
    expect(target.serviceAccounts.size + target.anchors.size).to.equal(0);
    expect(reasonsOf(outcome)).to.include.members(['Warning/AnchorTampered', 'Warning/ServiceAccountTampered']);
    expect(outcome.response.status?.previousTokensRevokedAt).to.be.a('string');
  });

  it('rotates with a relabelled ServiceAccount of the recorded UID: it is still the request\'s, relabelled, with a Warning; the old anchor is revoked', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    const [oldAnchor] = [...target.anchors.keys()];
    target.serviceAccounts.get(`${requestNamespace}/sa`)!.madeFor = '';
    rotate(world, '1');
    const minted = await world.sync();
    expect(minted.decision).to.equal('minted');
    expect(reasonsOf(minted)).to.include('Warning/ServiceAccountTampered');
    expect(target.serviceAccounts.get(`${requestNamespace}/sa`)).to.deep.equal({ uid: 'sa-uid-sa', madeFor: `${requestNamespace}/req` });
    world.apply(minted);
    const seen = await world.sync();
    expect(target.anchors.has(oldAnchor!)).to.equal(false);
    expect(seen.response.status?.previousTokensRevokedAt).to.be.a('string');
    expect(world.condition(seen, 'Ready')).to.include({ status: 'True' });
  });

  it('never takes the UID to use a relabelled ServiceAccount by from an observed token\'s claims (the tenant may write the output Secret)', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    target.serviceAccounts.get(`${requestNamespace}/sa`)!.madeFor = '';
    // The observed Secret's token names the ServiceAccount's UID; the status no longer records it.
    const status = world.parent.status!;
    world.parent = { ...world.parent, status: { ...status, serviceAccounts: status.serviceAccounts!.map(({ serviceAccountUID: _uid, ...entry }) => entry) } };
    rotate(world, '1');
    const refused = await world.sync();
    expect(world.condition(refused, 'Ready')).to.include({ status: 'False', reason: reasons.serviceAccountConflict });
    expect(target.serviceAccounts.get(`${requestNamespace}/sa`)?.madeFor).to.equal('');
  });

  it('never takes a ServiceAccount of another UID under that name, nor an unlabelled one with no UID on record (ServiceAccountConflict)', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    // Deleted, and made again by someone else under the same name.
    target.serviceAccounts.set(`${requestNamespace}/sa`, { uid: 'stranger-uid', madeFor: '' });
    rotate(world, '1');
    const callsBefore = target.calls.length;
    const refused = await world.sync();
    expect(world.condition(refused, 'Ready')).to.include({ status: 'False', reason: reasons.serviceAccountConflict });
    expect(target.calls.slice(callsBefore)).to.deep.equal(['ensureServiceAccount']);
    expect(target.serviceAccounts.get(`${requestNamespace}/sa`)?.madeFor).to.equal('');

    const fresh = onDpuCluster();
    fresh.target.serviceAccounts.set(`${requestNamespace}/sa`, { uid: 'stranger-uid', madeFor: '' });
    expect(world.condition(await fresh.world.sync(), 'Ready')).to.include({ status: 'False', reason: reasons.serviceAccountConflict });
    expect(fresh.target.calls).to.deep.equal(['ensureServiceAccount']);
  });

  it('never deletes by UID in a protected namespace: there only a ServiceAccount still labelled for the request goes', async function () {
    const world = new World();
    const host = world.clusters.host.target;
    host.serviceAccounts.set('kube-system/token-cleaner', { uid: 'victim-uid', madeFor: '' });
    world.parent = { ...world.parent, status: { serviceAccounts: [{ serviceAccount: 'kube-system/token-cleaner', serviceAccountUID: 'victim-uid' }] } };
    await world.finalize();
    expect(host.serviceAccounts.has('kube-system/token-cleaner')).to.equal(true);
  });

  it('deletes in a DPUCluster recreated under the same name (a new UID) that reaches the same API server', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    world.clusters.recreateDpuCluster(requestNamespace, 'dpu-cplane', 'restored-uid', { sameServer: true });
    const { targetCluster: _moved, ...hostSpec } = world.spec;
    world.parent = { ...world.parent, spec: hostSpec };
    const settled = await world.settle();
    expect(world.condition(settled, 'Ready')).to.include({ status: 'True' });
    expect([...target.serviceAccounts.keys(), ...target.anchors.keys()], JSON.stringify(settled.response.status)).to.deep.equal([]);
    expect(settled.response.status?.serviceAccounts?.map((entry) => entry.targetCluster ?? '')).to.deep.equal(['']);
  });

  it('takes a DPUCluster recreated under the same name for another API server as another cluster: what was made is dropped, not looked for there', async function () {
    const { world, target } = onDpuCluster();
    await world.settle();
    const other = world.clusters.recreateDpuCluster(requestNamespace, 'dpu-cplane', 'other-uid', { sameServer: false });
    const { targetCluster: _moved, ...hostSpec } = world.spec;
    world.parent = { ...world.parent, spec: hostSpec };
    const settled = await world.settle();
    expect(other.calls).to.not.include('deleteServiceAccount');
    expect(target.serviceAccounts.size).to.equal(1);
    expect(settled.response.status?.serviceAccounts?.map((entry) => entry.targetCluster ?? '')).to.deep.equal(['']);
  });
});
