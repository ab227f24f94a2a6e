// Every answer of the hooks, built in one place from what the phases found (facts.ts) and what
// the effects did (effects.ts): pure, no call. An issued credential's answer renders its Secret;
// every other keeps the Secret as it is (but a refusal, and a cluster gone), reports why, and
// retries with backoff.
import type { DpuServiceCredentialRequestStatus, SecretObject } from '../api.js';
import { eventReasons, normal, readinessChange, warning, type EventNote } from '../credential/events.js';
import { namespacedName } from '../credential/names.js';
import { observedSecretResult } from '../credential/observed-secret.js';
import { renderSecret } from '../credential/render.js';
import {
  buildStatus, conditionTypes, failed, failingSince, previousFailure, reasons, retryAfterSeconds, succeeded, type ConditionResult,
} from '../credential/status.js';
import { secondsUntil } from '../credential/time.js';
import { nextGraceEnd } from '../credential/token-anchors.js';
import { dateOf } from '../credential/token-record.js';
import { refreshTime, stillValid } from '../credential/token.js';
import { unchanged } from './children.js';
import type { Done } from './effects.js';
import type { Facts, Issued, Stop } from './facts.js';
import { noCleanup, noRevocation, type Cleanup, type Revocation } from './leftovers.js';
import { outcomeReasons, waitingFor, type OutcomeReason, type SyncOutcome } from './outcome.js';
import type { SyncRun } from './run.js';

/** The answer to a sync: what the phases found and the effects did, and the change of readiness as an Event. */
export function answer(run: SyncRun, facts: Facts, done: Done): SyncOutcome {
  if (facts.kind === 'behind') {
    return { response: { status: run.parent.status ?? {}, children: [], resyncAfterSeconds: facts.retryAfterSeconds },
      decision: 'behind', reason: outcomeReasons.behind };
  }
  const outcome = facts.kind === 'awaiting' ? awaiting(run, facts.retryAfterSeconds)
    : facts.kind === 'refused' ? refusal(run, facts, done)
      : facts.kind === 'stopped' ? stopAnswer(run, facts.stop, done)
        : issuedAnswer(run, facts.issued, done);
  const change = readinessChange(run.parent.status, outcome.response.status);
  // Nearly every answer keeps the request as ready as it was: its events stand as built.
  return change.length === 0 ? outcome : { ...outcome, events: [...(outcome.events ?? []), ...change] };
}

/**
 * A token was issued moments ago and Metacontroller does not show its Secret yet: answer
 * without minting again and without children (there is no observed child to delete).
 */
function awaiting({ parent, now }: SyncRun, retryAfter: number): SyncOutcome {
  const previous = parent.status ?? {};
  const issuedAt = dateOf(previous.issuedAt);
  const expiresAt = dateOf(previous.expirationTimestamp);
  const serviceAccount = previous.conditions?.find((c) => c.type === conditionTypes.serviceAccount);
  const status = buildStatus({
    previous,
    generation: parent.metadata?.generation ?? 0,
    serviceAccount: serviceAccount?.status === 'True' ? succeeded(serviceAccount.message) : waitingFor('the ServiceAccount'),
    secret: failed(reasons.pending, `waiting for Metacontroller to write secret ${previous.secret ?? ''} with the token issued at ${previous.issuedAt ?? ''}`),
    ...(previous.secret ? { secretName: previous.secret } : {}),
    ...(issuedAt && expiresAt ? { token: { issuedAt, expiresAt, ...(previous.tokenID ? { tokenId: previous.tokenID } : {}) } } : {}),
    now,
  });
  return { response: { status, children: [], resyncAfterSeconds: retryAfter }, decision: 'awaiting', reason: reasons.pending, events: [] };
}

/**
 * Nothing is minted, the Secret is dropped, and everything issued was taken back (effects.ts);
 * what could not be deleted stays recorded and is tried at the next sync.
 */
function refusal({ parent, holdings, now }: SyncRun, { refused, detail: why }: Extract<Facts, { kind: 'refused' }>, done: Done): SyncOutcome {
  // A deletion that did not run leaves everything on record as it was (never an empty record: that would drop live credentials).
  const revocation = done.revocations.revokeAll ?? noRevocation(done.anchors);
  const cleanup = done.cleanup ?? noCleanup(holdings.serviceAccounts);
  const tampering = tamperingNote(cleanup, revocation);
  const status = buildStatus({
    previous: parent.status,
    generation: parent.metadata?.generation ?? 0,
    serviceAccount: tampering ? { ...refused, message: `${refused.message}; ${tampering}` } : refused,
    secret: refused,
    // No identity: what was not deleted stays in the ledger, and nothing else may be read back as held.
    identity: {},
    serviceAccounts: cleanup.ledger,
    tokenAnchors: done.anchors,
    ...(revocation.revoked || cleanup.deleted.length > 0 ? { revokedAt: now } : {}),
    now,
  });
  const detail = [why, revocation.detail ?? cleanup.detail].filter(Boolean).join('; ');
  return {
    response: { status, children: [], resyncAfterSeconds: retryAfterSeconds(failingSince(parent.status, refused.reason), now) },
    decision: 'error',
    reason: refused.reason,
    ...(detail ? { detail } : {}),
    events: tamperingEvents(cleanup, revocation),
  };
}

/** Nothing is lost on a stop: the Secret stays as it is (unless its cluster is gone) and the sync is retried. */
function stopAnswer(run: SyncRun, stop: Stop, done: Done): SyncOutcome {
  const { parent, observed, now } = run;
  const held = stop.dropSecret ? undefined : observed.held;
  const secret = stop.revokeHeld ? heldTokenResult(stop.revokeHeld, done.revocations.revokeHeld) : stop.secret;
  const status = buildStatus({
    previous: parent.status,
    generation: parent.metadata?.generation ?? 0,
    serviceAccount: stop.serviceAccount,
    secret,
    ...(stop.serviceAccounts ? { serviceAccounts: stop.serviceAccounts } : {}),
    ...(stop.sweep || stop.tokenAnchors ? { tokenAnchors: done.anchors } : {}),
    ...(held?.secret.metadata?.name ? { secretName: namespacedName(held.secret.metadata.namespace ?? '', held.secret.metadata.name) } : {}),
    ...(held?.token ? { token: held.token } : {}),
    now,
  });
  const failing = [stop.serviceAccount, secret].find((result) => !result.ok);
  const reason = failing?.reason ?? reasons.pending;
  const backoff = retryAfterSeconds(failingSince(parent.status, reason), now);
  const { revokeHeld, sweep } = done.revocations;
  return {
    response: { status, children: stop.dropSecret ? [] : unchanged(observed.all), resyncAfterSeconds: Math.max(backoff, stop.retryAfterHint ?? 0) },
    decision: stop.decision,
    reason,
    ...(stop.detail ? { detail: stop.detail } : {}),
    events: [revokeHeld, sweep].flatMap((revocation) => (revocation ? tamperingEvents({ tampered: [] }, revocation) : [])),
  };
}

/** A forced rotation that could not mint: revoked only when its anchor is gone; one left standing (unproven) may still work. */
function heldTokenResult({ reason, why }: NonNullable<Stop['revokeHeld']>, revocation: Revocation | undefined): ConditionResult {
  const revoked = revocation !== undefined && revocation.revoked && revocation.failedToRevoke.length === 0 && revocation.unproven.length === 0;
  return failed(reason, `${why}; ${revoked
    ? 'the token the forced rotation replaces is revoked all the same: the Secret holds a token that no longer works'
    : 'the current Secret is kept'}`);
}

/** The issued credential's answer: the rendered Secret (and its predecessor while a rename is in flight), the status, the next sync. */
function issuedAnswer(run: SyncRun, issued: Issued, done: Done): SyncOutcome {
  const { account, token: { decision, events } } = issued;
  const cleanup = done.cleanup ?? noCleanup(account.ledger);
  const revocation = done.revocations.replaced ?? noRevocation(done.anchors);
  const serviceAccount = serviceAccountResultOf(cleanup, revocation, account.ready);
  const secret = secretResultOf(run, issued);
  const rotationAllowedAt = decision.action === 'keep' ? decision.rotationAllowedAt : undefined;
  const detail = cleanup.detail ?? revocation.detail;
  return {
    response: {
      status: issuedStatus(run, issued, { serviceAccount, secret, cleanup, revocation, rotationAllowedAt }),
      children: render(run, issued),
      resyncAfterSeconds: resyncAfter(run, issued, { serviceAccount, secret, anchors: revocation.anchors, rotationAllowedAt }),
    },
    decision: decision.action === 'keep' ? 'reused' : 'minted',
    reason: decision.action === 'keep' ? outcomeReasons.tokenStillFresh : decision.why,
    ...(detail ? { detail } : {}),
    events: [
      ...account.events,
      ...events,
      ...cleanup.deleted.map((name) => normal(eventReasons.serviceAccountDeleted, `deleted service account ${name}, which the spec no longer names`)),
      ...(revocation.revoked ? [normal(eventReasons.tokensRevoked, 'revoked the tokens issued before the rotation: the Secret holds the new one')] : []),
      ...tamperingEvents(cleanup, revocation),
    ],
  };
}

function serviceAccountResultOf(cleanup: Cleanup, revocation: Revocation, ready: ConditionResult): ConditionResult {
  if (cleanup.failed.length > 0) {
    return failed(reasons.serviceAccountCleanupFailed,
      `the previous service account ${cleanup.failed.map((entry) => entry.serviceAccount).join(', ')} could not be deleted yet; retrying`);
  }
  if (revocation.failedToRevoke.length > 0) {
    return failed(reasons.tokenRevocationFailed,
      `the tokens this one replaced still work: their anchor ${revocation.failedToRevoke.join(', ')} could not be deleted yet; retrying`);
  }
  const tampering = tamperingNote(cleanup, revocation);
  // A token that should have ended may still work: not ready until it has expired (or its ServiceAccount is deleted).
  if (revocation.unproven.length > 0) return failed(reasons.tamperingDetected, tampering);
  // Relabelled, deleted all the same: its token is revoked, the request is as ready as before (a Warning says what was found).
  return tampering ? { ...ready, message: `${ready.message}; ${tampering}` } : ready;
}

/** Whether Metacontroller reports the Secret holding the token handed out (observed-secret.ts decides). */
function secretResultOf(run: SyncRun, { spec, token, observedRecord, freshness }: Issued): ConditionResult {
  const secretName = namespacedName(spec.secret.namespace, spec.secret.name);
  return observedSecretResult({
    secretName,
    observed: observedRecord,
    returned: token.record,
    previousFailure: previousFailure(run.parent.status),
    writeRefused: freshness.refusedWrite === secretName,
    now: run.now,
  });
}

/**
 * The Secret to write, and the ones under earlier names that still hold a working token:
 * Metacontroller deletes the children an answer leaves out before it applies the new ones, so
 * after a rename the old one is kept until the new one is seen holding the token, and a refused
 * write of the new one does not leave the consumer without a working credential.
 */
function render(run: SyncRun, { spec, target, token, observedRecord }: Issued): SecretObject[] {
  const secret = renderSecret(spec, target.endpoint, token.record);
  if (observedRecord?.token === token.record.token) return [secret];
  const stillWorking = run.observed.predecessors.filter((child) => child.record && stillValid(child.record, run.now));
  return [secret, ...unchanged(stillWorking.map((child) => child.secret))];
}

interface IssuedResults {
  serviceAccount: ConditionResult;
  secret: ConditionResult;
  cleanup: Cleanup;
  revocation: Revocation;
  rotationAllowedAt: Date | undefined;
}

function issuedStatus(run: SyncRun, { spec, target, token, returned }: Issued, results: IssuedResults): DpuServiceCredentialRequestStatus {
  const { decision } = token;
  const { revocation, rotationAllowedAt } = results;
  const serviceAccount = namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name);
  return buildStatus({
    previous: run.parent.status,
    generation: spec.request.generation,
    serviceAccount: results.serviceAccount,
    secret: results.secret,
    identity: { serviceAccount, ...(spec.targetCluster ? { targetCluster: target.ref, targetClusterUID: target.uid } : {}) },
    serviceAccounts: results.cleanup.ledger,
    tokenAnchors: revocation.anchors,
    ...(revocation.revoked ? { revokedAt: run.now } : {}),
    ...(decision.action === 'mint' && decision.forced ? { forcedRotationAt: run.now } : {}),
    ...(rotationAllowedAt ? { forcedRotationAllowedAt: rotationAllowedAt } : {}),
    secretName: namespacedName(spec.secret.namespace, spec.secret.name),
    token: returned,
    now: run.now,
  });
}

/**
 * Whatever comes first: the refresh, the end of a replaced token's grace, a rotation held back;
 * sooner while failing. Not sooner while the Secret this answer writes is Pending: its own event
 * brings the next sync (a refused write fails Metacontroller's sync, which it retries with
 * backoff), and a requeue, which Metacontroller cannot withdraw, would only add a sync and a
 * status read per new request (docs/performance.md, "Calls per new request").
 */
function resyncAfter(run: SyncRun, { token }: Issued,
  results: Pick<IssuedResults, 'serviceAccount' | 'secret' | 'rotationAllowedAt'> & Pick<Done, 'anchors'>): number {
  const { secret } = results;
  const wakeUps = [refreshTime(token.record, token.jitterMs), nextGraceEnd(results.anchors, run.policy.renewalGraceMs, run.now),
    results.rotationAllowedAt].filter((when): when is Date => when !== undefined);
  const untilRefresh = Math.min(...wakeUps.map((when) => secondsUntil(when, run.now)));
  const failing = [results.serviceAccount, secret].find((result) => !result.ok);
  if (!failing || (failing === secret && secret.reason === reasons.pending)) return untilRefresh;
  return Math.min(untilRefresh, retryAfterSeconds(failingSince(run.parent.status, failing.reason), run.now));
}

/** Finalize's answer: done, or not yet (a deletion failed: retried with backoff, the children kept meanwhile). */
export function finalizeAnswer(status: DpuServiceCredentialRequestStatus, result: {
  reason: OutcomeReason; detail?: string; deleted: string[]; tampered: string[];
  retry?: { observed: SecretObject[]; afterSeconds: number };
}): SyncOutcome {
  const { reason, detail, retry } = result;
  if (retry) {
    return {
      response: { status, children: unchanged(retry.observed), resyncAfterSeconds: retry.afterSeconds, finalized: false },
      decision: 'error',
      reason,
      ...(detail ? { detail } : {}),
    };
  }
  return {
    response: { status, children: [], resyncAfterSeconds: 0, finalized: true },
    decision: 'finalized',
    reason,
    ...(detail ? { detail } : {}),
    events: [
      ...result.deleted.map((name) => normal(eventReasons.serviceAccountDeleted, `deleted service account ${name}: the request is being deleted`)),
      ...tamperingEvents({ tampered: result.tampered }, { tampered: [] }),
    ],
  };
}

/** The Warnings of a cleanup and a revocation that found what the webhook made relabelled (never a token: names only). */
function tamperingEvents(cleanup: Pick<Cleanup, 'tampered'>, revocation: Pick<Revocation, 'tampered'>): EventNote[] {
  return [
    ...revocation.tampered.map((anchor) => warning(eventReasons.anchorTampered,
      `the token anchor ${anchor} no longer carried this request's labels or owner (tampering): deleted by its UID, its token is revoked`)),
    ...cleanup.tampered.map((account) => warning(eventReasons.serviceAccountTampered,
      `the service account ${account} no longer carried this request's labels (tampering): deleted by its UID, its tokens are revoked`)),
  ];
}

/** What a condition adds about tampering (empty when none was found); see docs/operations.md, "After a leak". */
function tamperingNote(cleanup: Pick<Cleanup, 'tampered'>, revocation: Pick<Revocation, 'tampered' | 'unproven'>): string {
  const notes: string[] = [];
  const repaired = [...revocation.tampered.map((anchor) => `token anchor ${anchor}`), ...cleanup.tampered.map((account) => `service account ${account}`)];
  if (repaired.length > 0) notes.push(`tampering: ${repaired.join(', ')} had lost this request's labels and was deleted by UID`);
  if (revocation.unproven.length > 0) {
    notes.push(`tampering: the Secret under the name of token anchor ${revocation.unproven.join(', ')} is not labelled as this request's `
      + 'and no UID was recorded for it (an older version): it was left alone and its token may still work until it expires; '
      + 'delete the service account it belongs to to end every token of it (docs/operations.md, After a leak)');
  }
  return notes.join('; ');
}
