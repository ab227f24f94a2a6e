import { expect } from 'chai';
import { inputFreshness, observedSecretResult, settleWindowMs, writeRefused, type SecretObservation, type WrittenCheck } from '../../server/credential/observed-secret.js';
import { reasons } from '../../server/credential/status.js';
import { tokenRecord } from './fixtures.js';

const issuedAt = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(issuedAt.getTime() + ms);

describe('inputFreshness', function () {
  const noAnchors = new Set<string>();
  const last = { issuedAt, tokenId: 'jti-2' };
  const older = { issuedAt: at(-60_000), tokenId: 'jti-1' };

  it('takes the input as current when no token was issued yet', function () {
    expect(inputFreshness(undefined, [], noAnchors, false, at(0))).to.deep.equal({ state: 'current' });
  });

  it('takes the input as current when it shows the token issued last, or a newer one', function () {
    expect(inputFreshness(last, [older, { issuedAt, tokenId: 'jti-2' }], noAnchors, false, at(1_000))).to.deep.equal({ state: 'current' });
    expect(inputFreshness(last, [{ issuedAt: at(5_000), tokenId: 'jti-3' }], noAnchors, false, at(6_000))).to.deep.equal({ state: 'current' });
  });

  it('calls a Secret older than the token issued moments ago "behind", and says when to retry', function () {
    expect(inputFreshness(last, [older], noAnchors, false, at(1_000))).to.deep.equal({ state: 'behind', retryAfterSeconds: 29 });
  });

  it('tells apart two tokens issued in the same second by their ID', function () {
    expect(inputFreshness(last, [{ issuedAt, tokenId: 'jti-1' }], noAnchors, false, at(500))).to.deep.include({ state: 'behind' });
    // Without IDs (an API server before 1.29), the same second counts as the same token.
    expect(inputFreshness({ issuedAt }, [{ issuedAt }], noAnchors, false, at(500))).to.deep.equal({ state: 'current' });
  });

  it('takes a token bound to an anchor the status does not know as newer than that status (the parent cache lagged)', function () {
    const minted = { issuedAt, tokenId: 'jti-3', anchor: 'sa-token-new' };
    expect(inputFreshness({ issuedAt, tokenId: 'jti-1' }, [minted], new Set(['sa-token-old']), true, at(500))).to.deep.equal({ state: 'current' });
    const stale = { issuedAt, tokenId: 'jti-1', anchor: 'sa-token-old' };
    expect(inputFreshness(last, [stale], new Set(['sa-token-old', 'sa-token-new']), true, at(500))).to.deep.include({ state: 'behind' });
  });

  it('waits for a Secret not observed yet within the settle window', function () {
    expect(inputFreshness(last, [], noAnchors, false, at(10_000))).to.deep.equal({ state: 'awaiting', retryAfterSeconds: 20 });
  });

  it('does not wait for a Secret that was observed before and is gone now (deleted out of band)', function () {
    expect(inputFreshness(last, [], noAnchors, true, at(10_000))).to.deep.equal({ state: 'current' });
  });

  it('takes what is observed as the truth once the window has passed', function () {
    expect(inputFreshness(last, [older], noAnchors, false, at(settleWindowMs))).to.deep.equal({ state: 'current' });
    expect(inputFreshness(last, [], noAnchors, false, at(settleWindowMs + 1))).to.deep.equal({ state: 'current' });
  });
});

describe('observedSecretResult (SecretReconciled)', function () {
  const returned = tokenRecord({ token: 'new', issuedAt, expiresAt: at(3_600_000) });
  const observation = (overrides: Partial<SecretObservation>): SecretObservation => ({
    secretName: 'default/cred', observed: undefined, returned, previousFailure: undefined, now: at(1_000), ...overrides,
  });

  it('is True when the observed Secret holds the token returned', function () {
    const result = observedSecretResult(observation({ observed: returned }));
    expect(result).to.include({ ok: true, reason: reasons.success });
  });

  it('is True during a renewal, while the observed Secret still holds a valid token for the same spec', function () {
    const previous = tokenRecord({ token: 'old', issuedAt: at(-3_000_000), expiresAt: at(600_000) });
    const result = observedSecretResult(observation({ observed: previous }));
    expect(result.ok).to.equal(true);
    expect(result.message).to.contain('renewal');
  });

  it('is False (Pending) when the Secret holds a token for another spec (a rotation not written yet)', function () {
    const rotated = { ...returned, rotation: '2' };
    const result = observedSecretResult(observation({ observed: tokenRecord({ token: 'old', expiresAt: at(600_000) }), returned: rotated }));
    expect(result).to.include({ ok: false, reason: reasons.pending });
  });

  it('is False (Pending) when no Secret is observed, or the one observed has expired', function () {
    expect(observedSecretResult(observation({}))).to.include({ ok: false, reason: reasons.pending });
    const expired = tokenRecord({ token: 'old', issuedAt: at(-7_200_000), expiresAt: at(-1) });
    expect(observedSecretResult(observation({ observed: expired }))).to.include({ ok: false, reason: reasons.pending });
  });

  it('says SecretNotAdopted, with what to do, once the Secret has not shown up for the settle window', function () {
    const result = observedSecretResult(observation({ previousFailure: { reason: reasons.pending, since: at(-settleWindowMs) } }));
    expect(result).to.include({ ok: false, reason: reasons.secretNotAdopted });
    expect(result.message).to.contain('server-side-apply').and.to.contain('delete it');
    const stays = observedSecretResult(observation({ previousFailure: { reason: reasons.secretNotAdopted, since: at(-1_000) } }));
    expect(stays.reason).to.equal(reasons.secretNotAdopted);
  });

  it('does not count a wait that was for something else (another failure reason)', function () {
    const result = observedSecretResult(observation({ previousFailure: { reason: reasons.targetClusterUnreachable, since: at(-600_000) } }));
    expect(result.reason).to.equal(reasons.pending);
  });
});

describe('writeRefused (Metacontroller writes the status even when writing the Secret failed)', function () {
  const lastIssued = { issuedAt, tokenId: 'jti-2' };
  const check = (overrides: Partial<WrittenCheck>): WrittenCheck => ({
    lastIssued, knownAnchors: new Set(), observed: undefined, live: undefined, secretWasObserved: false, ...overrides,
  });

  it('is a refusal when neither the observed nor the live Secret holds the token the status records', function () {
    expect(writeRefused(check({}))).to.equal(true);
    expect(writeRefused(check({ observed: { token: { issuedAt: at(-60_000), tokenId: 'jti-1' } }, secretWasObserved: true }))).to.equal(true);
    expect(writeRefused(check({ live: { ours: true } }))).to.equal(true);
  });

  it('is no refusal when the live Secret holds it (the cache is behind), or the observed one does', function () {
    expect(writeRefused(check({ live: { token: lastIssued, ours: true } }))).to.equal(false);
    expect(writeRefused(check({ observed: { token: lastIssued } }))).to.equal(false);
  });

  it('is no refusal when the Secret of that name is not the request\'s child (not adopted: SecretNotAdopted says so)', function () {
    expect(writeRefused(check({ live: { ours: false } }))).to.equal(false);
  });

  it('is no refusal when a Secret seen holding a valid token is gone (deleted, minted again at once)', function () {
    expect(writeRefused(check({ secretWasObserved: true }))).to.equal(false);
  });
});

describe('observedSecretResult after a refused write', function () {
  const returned = tokenRecord({ token: 'new', issuedAt, expiresAt: at(3_600_000) });

  it('says SecretNotWritten, also during a renewal whose predecessor still works, and says it still works', function () {
    const base = { secretName: 'default/cred', returned, previousFailure: undefined, writeRefused: true, now: at(1_000) };
    const none = observedSecretResult({ ...base, observed: undefined });
    expect(none).to.include({ ok: false, reason: reasons.secretNotWritten });
    expect(none.message).to.contain('could not write secret default/cred').and.to.contain('holds no token');
    const previous = tokenRecord({ token: 'old', issuedAt: at(-3_000_000), expiresAt: at(600_000) });
    const renewal = observedSecretResult({ ...base, observed: previous });
    expect(renewal).to.include({ ok: false, reason: reasons.secretNotWritten });
    expect(renewal.message).to.contain(`previous token, valid until ${at(600_000).toISOString()}`);
  });

  it('is True once the Secret holds the token returned, whatever the last write did', function () {
    const result = observedSecretResult({ secretName: 'default/cred', returned, observed: returned, previousFailure: undefined, writeRefused: true, now: at(1_000) });
    expect(result.ok).to.equal(true);
  });
});
