// Plan, act, answer: the phases find facts without taking anything back, effectsOf names the
// effects those facts call for, and the effects are the only calls a sync makes after its
// phases. Against the in-memory clusters of fake-clusters.ts.
import { expect } from 'chai';
import { failed, reasons } from '../../server/credential/status.js';
import { act, effectsOf, type Effects } from '../../server/hooks/effects.js';
import { stopOf } from '../../server/hooks/error-outcomes.js';
import type { Facts, Stop } from '../../server/hooks/facts.js';
import { checkSpec } from '../../server/hooks/input-checks.js';
import { issue } from '../../server/hooks/issue.js';
import { startRun } from '../../server/hooks/run.js';
import { Deadline, KubeApiError } from '../../server/kube/rest.js';
import { requestNamespace, World } from './world.js';

const deadline = () => new Deadline(Date.now() + 10_000);

/** The effects as "kind" or "kind:purpose", in order. */
const named = (effects: Effects) => effects.list.map((effect) => (effect.kind === 'deleteAnchors' ? `${effect.kind}:${effect.purpose}` : effect.kind));

const stopWith = (changes: Partial<Stop>): Facts => {
  const invalid = failed(reasons.invalidSpec, 'invalid');
  return { kind: 'stopped', stop: { serviceAccount: invalid, secret: invalid, decision: 'invalid', sweep: true, ...changes } };
};

/** A request settled on a DPUCluster whose token has expired since (its anchor is due for the sweep), its spec now invalid; no call counted yet. */
async function expiredThenInvalid() {
  const world = new World({ targetCluster: { name: 'dpu-cplane' } });
  const target = world.clusters.addDpuCluster(requestNamespace, 'dpu-cplane');
  await world.settle();
  world.advance(2 * 3600_000);
  world.setSpec({ duration: 'forever' });
  target.calls.length = 0;
  world.clusters.host.calls.length = 0;
  return { world, target };
}

describe('plan, act, answer (in-memory clusters)', function () {
  it('finds an invalid spec without a call, though an expired anchor is on record: the sweep is left to the effects', async function () {
    const { world, target } = await expiredThenInvalid();
    const found = await checkSpec(startRun(world.request(), world.context, deadline()));
    expect(found).to.have.nested.property('ended.kind', 'stopped');
    expect(found).to.have.nested.include({ 'ended.stop.decision': 'invalid', 'ended.stop.sweep': true });
    expect(target.calls).to.deep.equal([]);
    expect(world.clusters.host.calls).to.deep.equal([]);
  });

  it('names the effects each kind of facts calls for, in the order act runs them', async function () {
    const world = new World();
    const run = startRun(world.request(), world.context, deadline());
    const refused: Facts = { kind: 'refused', refused: failed(reasons.referenceNotPermitted, 'no grant') };
    expect(named(effectsOf(run, refused))).to.deep.equal(['deleteAnchors:revokeAll', 'deleteServiceAccounts']);
    expect(named(effectsOf(run, { kind: 'behind', retryAfterSeconds: 5 }))).to.deep.equal([]);
    expect(named(effectsOf(run, { kind: 'awaiting', retryAfterSeconds: 5 }))).to.deep.equal([]);
    expect(named(effectsOf(run, stopWith({})))).to.deep.equal(['deleteAnchors:sweep']);
    // A failed grant check or mint leaves the record as it was for the retry.
    expect(named(effectsOf(run, stopWith({ sweep: false })))).to.deep.equal([]);
    expect(named(effectsOf(run, stopWith({ forget: 'tenant/dpu-cplane' })))).to.deep.equal(['forget', 'deleteAnchors:sweep']);
    expect(named(effectsOf(run, stopWith({ revokeHeld: { entries: [], reason: reasons.tokenRequestFailed, why: 'x' } }))))
      .to.deep.equal(['deleteAnchors:revokeHeld', 'deleteAnchors:sweep']);
  });

  it('issues, then takes back what the new token replaced: the ServiceAccounts first, then the anchors', async function () {
    const world = new World({ targetCluster: { name: 'dpu-cplane' } });
    world.clusters.addDpuCluster(requestNamespace, 'dpu-cplane');
    await world.settle();
    const run = startRun(world.request(), world.context, deadline());
    if (!run.validation.valid) throw new Error('the spec is valid');
    const issued = await issue(run, run.validation.spec, {});
    if ('ended' in issued) throw new Error('a settled request issues');
    expect(named(effectsOf(run, { kind: 'issued', issued }))).to.deep.equal(['deleteServiceAccounts', 'deleteAnchors:replaced']);
  });

  it('calls the target after a stop only through the effects: an expired anchor swept at an invalid spec', async function () {
    const { world, target } = await expiredThenInvalid();
    const outcome = await world.sync();
    expect(outcome).to.include({ decision: 'invalid', reason: reasons.invalidSpec });
    expect(target.calls).to.deep.equal(['deleteAnchor']);
    expect(target.anchors.size).to.equal(0);
  });

  it('forgets a target that refused its credentials in act, not in the phase that met the refusal', async function () {
    const world = new World({ targetCluster: { name: 'dpu-cplane' } });
    const target = world.clusters.addDpuCluster(requestNamespace, 'dpu-cplane');
    target.failing.set('ensureServiceAccount', new KubeApiError(401, 'Unauthorized', 'POST /api/v1/...: refused'));
    const run = startRun(world.request(), world.context, deadline());
    if (!run.validation.valid) throw new Error('the spec is valid');
    const ended = await issue(run, run.validation.spec, {});
    expect(ended).to.have.nested.property('ended.kind', 'failedCall');
    expect(world.clusters.forgotten).to.deep.equal([]);
    if (!('ended' in ended) || ended.ended.kind !== 'failedCall') throw new Error('a failed call ends the phase');
    const facts: Facts = { kind: 'stopped', stop: stopOf(ended.ended.call) };
    await act(run, effectsOf(run, facts), world.clusters);
    expect(world.clusters.forgotten).to.deep.equal([`${requestNamespace}/dpu-cplane`]);
    const outcome = await world.sync();
    expect(outcome).to.include({ decision: 'error', reason: reasons.serviceAccountReconcileFailed });
  });
});
