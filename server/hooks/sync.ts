// The sync hook, read top to bottom as a story: check the grants, make sure the input is
// not older than the last answer, validate, resolve the target cluster, ensure the
// ServiceAccount, keep or mint the token, revoke what it replaced, render the Secret and
// build the status. Each phase is a named function that returns its result or the outcome
// that ends the sync. The decisions are the pure functions in credential/; the calls go
// through the context's ClusterAccess; a failed call becomes an outcome in error-outcomes.ts.
import type { SecretObject, ServiceAccountEntry } from '../api.js';
import { eventReasons, normal, readinessChange, warning, type EventNote } from '../credential/events.js';
import { namespacedName } from '../credential/names.js';
import { observedSecretResult } from '../credential/observed-secret.js';
import { renderSecret } from '../credential/render.js';
import { adoptServiceAccountAnnotation } from '../credential/service-account-claim.js';
import { ledgerOf, sameServiceAccount, withServiceAccount } from '../credential/service-account-ledger.js';
import {
  buildStatus, failed, failingSince, previousFailure, reasons, retryAfterSeconds, rfc3339, succeeded, type ConditionResult, type StatusInput,
} from '../credential/status.js';
import { scopeOfSpec, trustedServiceAccountUid } from '../credential/tenancy.js';
import { secondsUntil } from '../credential/time.js';
import { anchorEntryOf, anchorsToDelete, markSuperseded, nextGraceEnd, withAnchor, type AnchorEntry } from '../credential/token-anchors.js';
import { dateOf } from '../credential/token-record.js';
import {
  decideToken, jitterMsFor, refreshTime, stillValid, tokenIdentityFor, type TokenDecision, type TokenIdentity, type TokenRecord,
} from '../credential/token.js';
import type { ValidSpec } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import type { EnsuredServiceAccount } from '../kube/service-accounts.js';
import type { Anchor } from '../kube/token-anchors.js';
import { serviceAccountUidOf } from '../kube/tokens.js';
import type { SyncRequest } from '../metacontroller.js';
import { unchanged, type HeldToken } from './children.js';
import type { TargetAccess } from './cluster-access.js';
import { resolveTargetCluster, TargetClusterGoneError, type HookContext } from './context.js';
import { ServiceAccountReplacedError } from './error-outcomes.js';
import { firstRefusal, refuse, scopesOf } from './grants.js';
import { deleteAnchors, deleteLeftovers, tamperingEvents, tamperingNote, type Cleanup, type Revocation } from './leftovers.js';
import { claimAnchor } from './mint-limit.js';
import { end, failure, hasEnded, outcomeReasons, type Ended, type SyncOutcome } from './outcome.js';
import { checkInputFreshness, checkSecretOwnership, type Freshness } from './secret-checks.js';
import { failedCall, failureBase, keepSecret, startRun, type SyncRun } from './sync-run.js';

/** `deadline`: when the answer must be sent, so that Metacontroller still takes it. */
export async function sync(request: SyncRequest, context: HookContext, deadline: Deadline): Promise<SyncOutcome> {
  const outcome = await syncPhases(startRun(request, context, deadline));
  if (outcome.decision === 'behind') return outcome;
  return { ...outcome, events: [...(outcome.events ?? []), ...readinessChange(request.parent.status, outcome.response.status)] };
}

async function syncPhases(run: SyncRun): Promise<SyncOutcome> {
  const refused = await checkGrants(run);
  if (refused) return refused.ended;
  const freshness = await checkInputFreshness(run);
  if (hasEnded(freshness)) return freshness.ended;
  const spec = await validate(run);
  if (hasEnded(spec)) return spec.ended;
  const target = await resolveTarget(run, spec);
  if (hasEnded(target)) return target.ended;
  const account = await ensureAccount(run, spec, target);
  if (hasEnded(account)) return account.ended;
  const token = await keepOrMint(run, spec, target, account, freshness);
  if (hasEnded(token)) return token.ended;
  const revoked = await revoke(run, spec, target, account, token);
  return answer(run, { spec, target, account, token, revoked, freshness });
}

/**
 * Tenancy before anything else may end the sync: what the request holds, and what a valid spec
 * asks for. A refusal takes back everything issued (grants.ts); undefined: all granted.
 */
async function checkGrants(run: SyncRun): Promise<Ended | undefined> {
  const { requestRef, holdings, validation } = run;
  const scopes = [...scopesOf(requestRef.namespace, holdings), ...(validation.valid ? [scopeOfSpec(validation.spec)] : [])];
  try {
    const refusal = await firstRefusal(requestRef.namespace, scopes, run.context, run.deadline);
    return refusal ? end(await refuse(run.parent, refusal, holdings, run.context, run.deadline, run.now)) : undefined;
  } catch (error) {
    return end(failure({ ...failedCall(run, error, 'grants'), ...failureBase(run) }));
  }
}

/** The spec, valid, within the policy, and naming a Secret this request may write. */
async function validate(run: SyncRun): Promise<ValidSpec | Ended> {
  if (!run.validation.valid) {
    const invalid = failed(reasons.invalidSpec, `the request is invalid: ${run.validation.problems.join('; ')}`);
    return keepSecret(run, { serviceAccount: invalid, secret: invalid, decision: 'invalid' });
  }
  const spec = run.validation.spec;
  const maxSeconds = run.policy.maxTokenDurationSeconds;
  if (spec.expirationSeconds !== undefined && spec.expirationSeconds > maxSeconds) {
    const tooLong = failed(reasons.durationNotPermitted, `spec.duration: ${spec.expirationSeconds}s is longer than this webhook issues `
      + `(MAX_TOKEN_DURATION: ${maxSeconds}s); nothing was minted, the current Secret is kept`);
    return keepSecret(run, { serviceAccount: tooLong, secret: tooLong, decision: 'invalid' });
  }
  return (await checkSecretOwnership(run, spec)) ?? spec;
}

async function resolveTarget(run: SyncRun, spec: ValidSpec): Promise<TargetAccess | Ended> {
  try {
    return await resolveTargetCluster(spec, run.request.related, run.context, run.deadline);
  } catch (error) {
    if (!(error instanceof TargetClusterGoneError)) return keepSecret(run, failedCall(run, error, 'target'));
    // Only a Secret minted for the cluster that is gone is dropped: a typo in
    // targetCluster must not cost the Secret that still works for the old one.
    const kept = run.observed.recordOf(run.observed.lineage(spec.secret.name).held);
    const mintedForGoneCluster = !kept || kept.targetCluster === error.clusterRef;
    const message = mintedForGoneCluster ? error.message : `${error.message}; the Secret for ${kept.targetCluster || 'the host cluster'} is kept`;
    const gone = failed(reasons.targetClusterNotFound, message);
    return keepSecret(run, { serviceAccount: gone, secret: gone, decision: 'error', dropSecret: mintedForGoneCluster });
  }
}

/** The ServiceAccount as ensured: what the token is minted for, and where it is recorded. */
interface EnsuredAccount {
  /** "namespace/name". */
  ref: string;
  /** The ledger entry, recorded before anything is minted for it: a spec that changes again cannot leave it behind. */
  current: ServiceAccountEntry;
  ledger: ServiceAccountEntry[];
  identity: TokenIdentity;
  ready: ConditionResult;
  /** Where it lives, for messages. */
  where: string;
  events: EventNote[];
}

async function ensureAccount(run: SyncRun, spec: ValidSpec, target: TargetAccess): Promise<EnsuredAccount | Ended> {
  const ref = namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name);
  const where = target.ref ? `DPUCluster ${target.ref}` : 'the host cluster';
  const place: ServiceAccountEntry = {
    serviceAccount: ref,
    ...(spec.targetCluster ? { targetCluster: target.ref, targetClusterUID: target.uid } : {}),
    clusterID: target.id,
  };
  // The UID this webhook recorded for it when it ensured it: one of that UID whose labels were stripped is still
  // this request's. Only from the status's own entries (ensureAccount writes clusterID and UID together), never
  // from an observed token's claims: the tenant may write the output Secret, and a forged token naming a
  // stranger's UID would have the webhook take that ServiceAccount over and mint for it.
  const recordedUid = trustedServiceAccountUid(spec.serviceAccount.namespace,
    ledgerOf(run.parent.status).find((known) => known.clusterID && sameServiceAccount(known, place))?.serviceAccountUID,
    run.policy.protectedNamespaces);
  let ensured: EnsuredServiceAccount;
  try {
    ensured = await target.ensureServiceAccount({ ...spec.serviceAccount, ...(recordedUid ? { uid: recordedUid } : {}) }, spec.request, run.deadline);
  } catch (error) {
    return keepSecret(run, failedCall(run, error, 'serviceAccount', target));
  }
  const current: ServiceAccountEntry = {
    ...place,
    // What it is deleted by later, whatever its labels say by then.
    ...(ensured.uid ? { serviceAccountUID: ensured.uid } : {}),
  };
  return {
    ref,
    current,
    ledger: withServiceAccount(run.holdings.serviceAccounts, current),
    identity: tokenIdentityFor(spec, ensured.uid, target),
    ready: succeeded(`service account ${ref} exists in ${where}`),
    where,
    events: [
      ...(ensured.created ? [normal(eventReasons.serviceAccountCreated, `created service account ${ref} in ${where}`)] : []),
      ...(ensured.adopted ? [normal(eventReasons.serviceAccountAdopted, `adopted service account ${ref} in ${where} `
        + `(its ${adoptServiceAccountAnnotation} annotation names this request): labelled as this request's, the same object (UID ${ensured.uid})`)] : []),
      ...(ensured.tampered ? [warning(eventReasons.serviceAccountTampered, `the service account ${ref} in ${where} no longer carried `
        + `this request's labels (tampering): it has the UID recorded for it, so it is still this request's and is used; `
        + (ensured.tampered === 'relabelled' ? 'its labels were restored' : 'its labels could not be restored (the patch was refused)'))] : []),
    ],
  };
}

/** The token the Secret will hold: the one it holds, or a new one. */
interface HeldOrMinted {
  decision: TokenDecision;
  record: TokenRecord;
  /** The anchors on record, the new token's included. */
  anchors: AnchorEntry[];
  events: EventNote[];
}

async function keepOrMint(run: SyncRun, spec: ValidSpec, target: TargetAccess, account: EnsuredAccount, freshness: Freshness):
  Promise<HeldOrMinted | Ended> {
  const held = run.observed.recordOf(run.observed.lineage(spec.secret.name).held);
  const decide = (lastForcedRotation: Date | undefined) => decideToken(held, account.identity, jitterMsFor(spec.request.uid), run.now,
    lastForcedRotation && new Date(lastForcedRotation.getTime() + run.policy.minForcedRotationIntervalMs));
  const decision = decide(dateOf(run.parent.status?.lastForcedRotationAt));
  // What the status lost to Metacontroller's cache lag but the observed Secrets show is kept on record.
  const anchors = run.holdings.anchors;
  if (decision.action === 'keep') return { decision, record: decision.record, anchors, events: [] };
  const anchored = (recorded: AnchorEntry[], anchor: Anchor, expiresAt: Date) =>
    withAnchor(recorded, anchorEntryOf(account.current, anchor, spec.rotation, rfc3339(expiresAt)));
  let anchor: Anchor | undefined;
  let recorded = anchors;
  try {
    // The limits that hold whatever status this sync read (mint-limit.ts).
    const claim = await claimAnchor(run, spec, target, {
      decision,
      heldAnchor: held ? run.observed.issuedToken(held).anchor : undefined,
      serviceAccount: { ...spec.serviceAccount, uid: account.identity.serviceAccountUid },
      holdBack: decide,
      refusedWrite: freshness.refusedWrite === namespacedName(spec.secret.namespace, spec.secret.name),
      serviceAccountReady: account.ready,
      ledger: account.ledger,
      where: account.where,
    });
    if (hasEnded(claim)) return claim;
    if ('kept' in claim) return { decision: claim.kept, record: claim.kept.record, anchors, events: [] };
    const created = claim.anchor;
    anchor = created;
    recorded = claim.anchors;
    const record = await mintToken(run, target, spec, account.identity, created);
    const issued = normal(eventReasons.tokenIssued, `issued a token for service account ${account.ref} in ${account.where}, `
      + `valid until ${rfc3339(record.expiresAt)} (${decision.why})`);
    return { decision, record, anchors: anchored(recorded, created, record.expiresAt), events: [issued] };
  } catch (error) {
    return end(failure({
      ...failedCall(run, error, 'token', target, account.ready),
      ...failureBase(run),
      serviceAccounts: account.ledger,
      // An anchor without a token: recorded as expired, so a later sync deletes it.
      tokenAnchors: anchor ? anchored(recorded, anchor, run.now) : anchors,
    }));
  }
}

/** Mints a token bound to `anchor` and records what it was minted for. Times come from the response. */
async function mintToken(run: SyncRun, target: TargetAccess, spec: ValidSpec, identity: TokenIdentity,
  anchor: { name: string; uid: string }): Promise<TokenRecord> {
  const minted = await target.requestToken(spec.serviceAccount, spec.expirationSeconds, anchor, run.deadline);
  // The ownership check may have read a cache a moment behind: a token for any other
  // ServiceAccount of that name (recreated meanwhile, perhaps unmanaged) is thrown away.
  const mintedFor = serviceAccountUidOf(minted.token);
  if (mintedFor && mintedFor !== identity.serviceAccountUid) throw new ServiceAccountReplacedError(identity.serviceAccount);
  const issuedAt = new Date(minted.expiresAt.getTime() - minted.expirationSeconds * 1_000);
  return { ...identity, token: minted.token, issuedAt, expiresAt: minted.expiresAt };
}

/** What revoking left: the ServiceAccounts and anchors deleted or still on record, and the conditions they set. */
interface Revoked {
  cleanup: Cleanup;
  revocation: Revocation;
  serviceAccountResult: ConditionResult;
  /** The token handed out, and the Secret under the spec's name as observed. */
  returned: HeldToken;
  observedRecord: TokenRecord | undefined;
}

/**
 * Deletes what the new credential replaced, once it exists: the ServiceAccounts the spec no longer
 * names, and the anchors of tokens past their grace. Only once Metacontroller reports the Secret
 * holding this token are older ones revoked.
 */
async function revoke(run: SyncRun, spec: ValidSpec, target: TargetAccess, account: EnsuredAccount, token: HeldOrMinted): Promise<Revoked> {
  const cleanup = await deleteLeftovers(account.ledger, { current: account.current, target }, spec.request, run.context, run.deadline);
  const observedRecord = run.observed.recordOf(run.observed.lineage(spec.secret.name).current);
  const returned = run.observed.issuedToken(token.record);
  const anchors = anchorsOnRecord(token, returned, account.current);
  const observedAnchor = observedRecord?.token === token.record.token ? returned.anchor : undefined;
  const currentAnchor = anchors.find((entry) => entry.anchor === observedAnchor && sameServiceAccount(entry, account.current));
  const marked = markSuperseded(anchors, returned.anchor, currentAnchor, run.now);
  const revocation = await deleteAnchors(anchorsToDelete(marked, returned.anchor, currentAnchor, run.limits, run.now), marked,
    target, spec.request, run.context, run.deadline);
  return { cleanup, revocation, serviceAccountResult: serviceAccountResultOf(cleanup, revocation, account.ready), returned, observedRecord };
}

/**
 * The token handed out names its anchor itself: recorded even when the status this sync
 * read (from Metacontroller's cache) predates the answer that minted it. Without the UID its
 * claims name (holdingsOf says why): a token minted now is on record with its UID already.
 */
function anchorsOnRecord(token: HeldOrMinted, returned: HeldToken, current: ServiceAccountEntry): AnchorEntry[] {
  const { anchor } = returned;
  if (!anchor || token.anchors.some((entry) => entry.anchor === anchor && sameServiceAccount(entry, current))) return token.anchors;
  return withAnchor(token.anchors, anchorEntryOf(current, { name: anchor }, token.record.rotation, rfc3339(token.record.expiresAt)));
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

/** Everything the phases found, for the answer. */
interface Synced {
  spec: ValidSpec;
  target: TargetAccess;
  account: EnsuredAccount;
  token: HeldOrMinted;
  revoked: Revoked;
  freshness: Freshness;
}

/** The answer: the rendered Secret (and its predecessor while a rename is in flight), the status, the next sync. */
function answer(run: SyncRun, synced: Synced): SyncOutcome {
  const { account, token: { decision, events }, revoked: { cleanup, revocation } } = synced;
  const secret = secretResultOf(run, synced);
  const rotationAllowedAt = decision.action === 'keep' ? decision.rotationAllowedAt : undefined;
  return {
    response: {
      status: statusOf(run, synced, secret, rotationAllowedAt),
      children: render(run, synced),
      resyncAfterSeconds: resyncAfter(run, synced, secret, rotationAllowedAt),
    },
    decision: decision.action === 'keep' ? 'reused' : 'minted',
    reason: decision.action === 'keep' ? outcomeReasons.tokenStillFresh : decision.why,
    ...(cleanup.detail ?? revocation.detail ? { detail: cleanup.detail ?? revocation.detail } : {}),
    events: [
      ...account.events,
      ...events,
      ...cleanup.deleted.map((name) => normal(eventReasons.serviceAccountDeleted, `deleted service account ${name}, which the spec no longer names`)),
      ...(revocation.revoked ? [normal(eventReasons.tokensRevoked, 'revoked the tokens issued before the rotation: the Secret holds the new one')] : []),
      ...tamperingEvents(cleanup, revocation),
    ],
  };
}

/** Whether Metacontroller reports the Secret holding the token handed out (observed-secret.ts decides). */
function secretResultOf(run: SyncRun, { spec, token, revoked, freshness }: Synced): ConditionResult {
  const secretName = namespacedName(spec.secret.namespace, spec.secret.name);
  return observedSecretResult({
    secretName,
    observed: revoked.observedRecord,
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
function render(run: SyncRun, { spec, target, token, revoked }: Synced): SecretObject[] {
  const secret = renderSecret(spec, target.endpoint, token.record);
  if (revoked.observedRecord?.token === token.record.token) return [secret];
  const predecessors = run.observed.lineage(spec.secret.name).predecessors;
  return [secret, ...unchanged(predecessors.filter((child) => {
    const held = run.observed.recordOf(child);
    return held !== undefined && stillValid(held, run.now);
  }))];
}

function statusOf(run: SyncRun, { spec, target, token, revoked }: Synced, secret: ConditionResult, rotationAllowedAt: Date | undefined) {
  const { decision } = token;
  const { revocation } = revoked;
  return buildStatus({
    previous: run.parent.status,
    generation: spec.request.generation,
    serviceAccount: revoked.serviceAccountResult,
    secret,
    identity: identityOf(spec, target),
    serviceAccounts: revoked.cleanup.ledger,
    tokenAnchors: revocation.anchors,
    ...(revocation.revoked ? { revokedAt: run.now } : {}),
    ...(decision.action === 'mint' && decision.forced ? { forcedRotationAt: run.now } : {}),
    ...(rotationAllowedAt ? { forcedRotationAllowedAt: rotationAllowedAt } : {}),
    secretName: namespacedName(spec.secret.namespace, spec.secret.name),
    token: revoked.returned,
    now: run.now,
  });
}

function identityOf(spec: ValidSpec, target: TargetAccess): StatusInput['identity'] {
  return {
    serviceAccount: namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name),
    ...(spec.targetCluster ? { targetCluster: target.ref, targetClusterUID: target.uid } : {}),
  };
}

/**
 * Whatever comes first: the refresh, the end of a replaced token's grace, a rotation held back;
 * sooner while failing. Not sooner while the Secret this answer writes is Pending: its own event
 * brings the next sync (a refused write fails Metacontroller's sync, which it retries with
 * backoff), and a requeue, which Metacontroller cannot withdraw, would only add a sync and a
 * status read per new request (docs/performance.md, "Calls per new request").
 */
function resyncAfter(run: SyncRun, { spec, token, revoked }: Synced, secret: ConditionResult, rotationAllowedAt: Date | undefined): number {
  const wakeUps = [refreshTime(token.record, jitterMsFor(spec.request.uid)), nextGraceEnd(revoked.revocation.anchors, run.policy.renewalGraceMs, run.now),
    rotationAllowedAt].filter((when): when is Date => when !== undefined);
  const untilRefresh = Math.min(...wakeUps.map((when) => secondsUntil(when, run.now)));
  const failing = [revoked.serviceAccountResult, secret].find((result) => !result.ok);
  if (!failing || (failing === secret && secret.reason === reasons.pending)) return untilRefresh;
  return Math.min(untilRefresh, retryAfterSeconds(failingSince(run.parent.status, failing.reason), run.now));
}
