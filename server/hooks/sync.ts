// The sync hook: from the observed request, its Secret and its DPUCluster to the
// desired Secret and status. Decisions are made by the pure functions in
// credential/; this file only orders the steps and calls the cluster layer.
import { isRecord, type DpuServiceCredentialRequest, type DpuServiceCredentialRequestStatus, type SecretObject, type ServiceAccountEntry } from '../api.js';
import { sameServiceAccount, withServiceAccount } from '../credential/service-account-ledger.js';
import { eventReasons, normal, readinessChange, type EventNote } from '../credential/events.js';
import { scopeOfSpec, type Refusal } from '../credential/tenancy.js';
import { anchorsOf, anchorsToDelete, markSuperseded, nextGraceEnd, withAnchor, type AnchorEntry } from '../credential/token-anchors.js';
import { decideToken } from '../credential/decide.js';
import { CredentialError } from '../credential/errors.js';
import { adoptAnnotation, namespacedName, tokenAnnotations } from '../credential/names.js';
import { renderSecret } from '../credential/render.js';
import { inputFreshness, observedSecretResult, showsLastIssued, writeRefused, type IssuedToken } from '../credential/observed-secret.js';
import { jitterMsFor, refreshTime, retryAfterSeconds, secondsUntil } from '../credential/schedule.js';
import { buildStatus, conditionTypes, failed, failingSince, previousFailure, reasons, rfc3339, succeeded, type ConditionResult, type StatusInput } from '../credential/status.js';
import { dateOf, readTokenRecord, type TokenIdentity, type TokenRecord } from '../credential/token-record.js';
import { validateRequest, type ValidSpec } from '../credential/validate.js';
import { serviceAccountCacheOf, type TargetCluster } from '../kube/clusters.js';
import { KubeApiError, type Deadline } from '../kube/rest.js';
import { ensureServiceAccount } from '../kube/service-accounts.js';
import { createAnchor, type Anchor } from '../kube/token-anchors.js';
import { bindingOf, requestToken, serviceAccountUidOf } from '../kube/tokens.js';
import { secretChildKey, type SyncRequest } from '../metacontroller.js';
import { unchanged } from './children.js';
import { policyOf, resolveTargetCluster, TargetClusterGoneError, type HookContext } from './context.js';
import { conditionForError, detailOf, retryHint } from './errors.js';
import { firstRefusal, holdingsOf, refuse, scopesOf } from './grants.js';
import type { SyncDecision, SyncOutcome } from './outcome.js';
import { deleteAnchors, deleteLeftovers } from './leftovers.js';

export type { SyncDecision, SyncOutcome } from './outcome.js';

/** The output Secret as observed: under the spec's name, or under an earlier name (spec.secret.name changed). */
function existingSecret(observed: SecretObject[], spec: ValidSpec): SecretObject | undefined {
  return observed.find((secret) => secret.metadata?.name === spec.secret.name)
    ?? observed.find((secret) => secret.metadata?.annotations?.[tokenAnnotations.issuedAt]);
}

const issuedToken = (record: TokenRecord): IssuedToken & Pick<TokenRecord, 'expiresAt'> =>
  ({ issuedAt: record.issuedAt, expiresAt: record.expiresAt, ...bindingOf(record.token) });

/**
 * What the observed children hold, each read once per sync: decoding a Secret's kubeconfig
 * and its token's claims is most of this hook's own work on the reuse path.
 */
class ObservedRecords {
  private readonly records: Map<SecretObject, TokenRecord | undefined>;
  private readonly issued = new Map<TokenRecord, ReturnType<typeof issuedToken>>();

  constructor(observed: SecretObject[]) {
    this.records = new Map(observed.map((secret) => [secret, readTokenRecord(secret)]));
  }

  recordOf(secret: SecretObject | undefined): TokenRecord | undefined {
    return secret ? this.records.get(secret) : undefined;
  }

  issuedToken(record: TokenRecord): ReturnType<typeof issuedToken> {
    let issued = this.issued.get(record);
    if (!issued) this.issued.set(record, issued = issuedToken(record));
    return issued;
  }

  /** The token records the observed children hold. */
  all(): TokenRecord[] {
    return [...this.records.values()].filter((record): record is TokenRecord => record !== undefined);
  }

  /** The tokens the observed children hold. */
  tokens(): IssuedToken[] {
    return this.all().map((record) => this.issuedToken(record));
  }
}

/** The token this webhook issued last, as the status recorded it. */
function lastIssued(status: DpuServiceCredentialRequestStatus | undefined): IssuedToken | undefined {
  const issuedAt = dateOf(status?.issuedAt);
  return issuedAt ? { issuedAt, ...(status?.tokenID ? { tokenId: status.tokenID } : {}) } : undefined;
}

interface FailureInput {
  parent: DpuServiceCredentialRequest;
  observed: SecretObject[];
  serviceAccount: ConditionResult;
  secret: ConditionResult;
  decision: SyncDecision;
  retryAfterHint?: number;
  detail?: string;
  dropSecret?: boolean;
  identity?: StatusInput['identity'];
  serviceAccounts?: ServiceAccountEntry[];
  tokenAnchors?: AnchorEntry[];
  now: Date;
}

/** Nothing is lost on failure: the Secret stays as it is (unless its cluster is gone) and the sync is retried. */
function failure(input: FailureInput): SyncOutcome {
  const previous = input.parent.status;
  const children = input.dropSecret ? [] : unchanged(input.observed);
  const kept = children[0];
  const keptRecord = readTokenRecord(kept);
  const status = buildStatus({
    previous,
    generation: input.parent.metadata?.generation ?? 0,
    serviceAccount: input.serviceAccount,
    secret: input.secret,
    identity: input.identity,
    ...(input.serviceAccounts ? { serviceAccounts: input.serviceAccounts } : {}),
    ...(input.tokenAnchors ? { tokenAnchors: input.tokenAnchors } : {}),
    ...(kept?.metadata?.name ? { secretName: namespacedName(kept.metadata.namespace ?? '', kept.metadata.name) } : {}),
    ...(keptRecord ? { token: issuedToken(keptRecord) } : {}),
    now: input.now,
  });
  const failing = [input.serviceAccount, input.secret].find((result) => !result.ok);
  const reason = failing?.reason ?? reasons.pending;
  const backoff = retryAfterSeconds(failingSince(previous, reason), input.now);
  return {
    response: { status, children, resyncAfterSeconds: Math.max(backoff, input.retryAfterHint ?? 0) },
    decision: input.decision,
    reason,
    ...(input.detail ? { detail: input.detail } : {}),
  };
}

function currentIdentity(spec: ValidSpec, target: TargetCluster): StatusInput['identity'] {
  return {
    serviceAccount: namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name),
    ...(spec.targetCluster ? { targetCluster: target.ref, targetClusterUID: target.uid } : {}),
  };
}

const waitingFor = (what: string) => failed(reasons.pending, `waiting for ${what}`);

/** Mints a token bound to `anchor` and records what it was minted for. Times come from the response. */
async function mintToken(target: TargetCluster, spec: ValidSpec, identity: TokenIdentity, anchor: Anchor, deadline: Deadline): Promise<TokenRecord> {
  const minted = await requestToken(target.client.within(deadline), spec.serviceAccount.namespace, spec.serviceAccount.name,
    spec.expirationSeconds, anchor);
  // The ownership check may have read a cache a moment behind: a token for any other
  // ServiceAccount of that name (recreated meanwhile, perhaps unmanaged) is thrown away.
  const mintedFor = serviceAccountUidOf(minted.token);
  if (mintedFor && mintedFor !== identity.serviceAccountUid) {
    throw new CredentialError(reasons.serviceAccountConflict,
      `service account ${identity.serviceAccount} was replaced while its token was minted; the token was discarded, retrying`);
  }
  const issuedAt = new Date(minted.expiresAt.getTime() - minted.expirationSeconds * 1_000);
  return { ...identity, token: minted.token, issuedAt, expiresAt: minted.expiresAt };
}

/**
 * A token was issued moments ago and Metacontroller does not show its Secret yet: answer
 * without minting again and without children (there is no observed child to delete).
 */
function awaitingSecret(parent: DpuServiceCredentialRequest, retryAfter: number, now: Date): SyncOutcome {
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
  return { response: { status, children: [], resyncAfterSeconds: retryAfter }, decision: 'awaiting', reason: reasons.pending };
}

/** `deadline`: when the answer must be sent, so that Metacontroller still takes it. */
export async function sync(request: SyncRequest, context: HookContext, deadline: Deadline): Promise<SyncOutcome> {
  const outcome = await syncSteps(request, context, deadline);
  if (outcome.decision === 'behind') return outcome;
  return { ...outcome, events: [...(outcome.events ?? []), ...readinessChange(request.parent.status, outcome.response.status)] };
}

/** Whether `secret` is the child of the request with UID `requestUid` (its controller reference), observed or not yet. */
const isControlledBy = (secret: SecretObject | undefined, requestUid: string | undefined) =>
  (secret?.metadata?.ownerReferences ?? []).some((owner) => isRecord(owner) && owner.controller === true && owner.uid === requestUid);

/** Whether the request may write `secret`: its own child, or a Secret whose editor consented (adoptAnnotation). */
function mayWrite(secret: SecretObject, request: ValidSpec['request']): boolean {
  return secret.metadata?.annotations?.[adoptAnnotation] === request.name || isControlledBy(secret, request.uid);
}

/**
 * The Secret ("namespace/name") the status records whose last write Metacontroller could not
 * make (see writeRefused), if any. It is read live only when its observed child does not show
 * the token issued last: after a mint, before the cache has it, or after a refused write.
 */
async function refusedSecretWrite(parent: DpuServiceCredentialRequest, observed: SecretObject[], records: ObservedRecords,
  knownAnchors: ReadonlySet<string>, secretWasObserved: boolean, context: HookContext, deadline: Deadline): Promise<string | undefined> {
  const last = lastIssued(parent.status);
  const recorded = parent.status?.secret;
  if (!last || !recorded) return undefined;
  const [namespace = '', name = ''] = recorded.split('/');
  const child = observed.find((secret) => secret.metadata?.name === name);
  const childRecord = records.recordOf(child);
  const seen = child ? (childRecord ? { token: records.issuedToken(childRecord) } : {}) : undefined;
  if (seen?.token && showsLastIssued(seen.token, last, knownAnchors)) return undefined;
  let live: SecretObject | undefined;
  try {
    live = await context.clusters.host.readSecret(namespace, name, deadline);
  } catch {
    // Not knowing is not a refusal: the cache-lag rules below decide as they did before.
    return undefined;
  }
  const liveRecord = readTokenRecord(live);
  const ours = isControlledBy(live, parent.metadata?.uid);
  const liveSeen = live ? { ours, ...(liveRecord ? { token: issuedToken(liveRecord) } : {}) } : undefined;
  return writeRefused({ lastIssued: last, knownAnchors, observed: seen, live: liveSeen, secretWasObserved }) ? recorded : undefined;
}

async function syncSteps(request: SyncRequest, context: HookContext, deadline: Deadline): Promise<SyncOutcome> {
  const now = context.now();
  const parent = request.parent;
  const policy = policyOf(context);
  const observed = Object.values(request.children?.[secretChildKey] ?? {});
  const records = new ObservedRecords(observed);
  const validation = validateRequest(parent);
  const requestNamespace = parent.metadata?.namespace ?? '';

  // Tenancy before anything else may end the sync: what the request holds, and what a valid spec asks for.
  const holdings = holdingsOf(parent, records.all().map((record) => ({ record, anchor: records.issuedToken(record).anchor })));
  const scopes = [...scopesOf(requestNamespace, holdings), ...(validation.valid ? [scopeOfSpec(validation.spec)] : [])];
  let refusal: Refusal | undefined;
  try {
    refusal = await firstRefusal(requestNamespace, scopes, context, deadline);
  } catch (error) {
    const problem = conditionForError(error, 'target');
    return failure({ parent, observed, serviceAccount: problem, secret: waitingFor('the grant check'), decision: 'error',
      retryAfterHint: retryHint(error), detail: detailOf(error), now });
  }
  if (refusal) return refuse(parent, refusal, holdings, context, deadline, now);
  const limits = { renewalGraceMs: policy.renewalGraceMs, maxLifetimeMs: policy.maxTokenDurationSeconds * 1_000 };
  /**
   * An answer that keeps the Secret as it is (an invalid spec, a failing cluster) still ends what no
   * Secret may hold any more: tokens past their renewal grace or beyond the lifetime ceiling.
   */
  const keepingSecret = async (input: Omit<FailureInput, 'parent' | 'observed' | 'now' | 'tokenAnchors'>): Promise<SyncOutcome> => {
    const sweep = await deleteAnchors(anchorsToDelete(holdings.anchors, undefined, undefined, limits, now), holdings.anchors,
      undefined, { namespace: requestNamespace, name: parent.metadata?.name ?? '' }, context, deadline);
    return failure({ ...input, parent, observed, now, tokenAnchors: sweep.anchors });
  };

  // Nothing below may act on children older than this webhook's last answer (see observed-secret.ts).
  const secretWasObserved = parent.status?.conditions?.some((c) => c.type === conditionTypes.secret && c.status === 'True') ?? false;
  const knownAnchors = new Set(anchorsOf(parent.status).map((entry) => entry.anchor));
  const freshness = inputFreshness(lastIssued(parent.status), records.tokens(), knownAnchors, secretWasObserved, now);
  // A refused write is no lag: waiting for it would end in a 429 loop or a Secret never written.
  const refusedWrite = await refusedSecretWrite(parent, observed, records, knownAnchors, secretWasObserved, context, deadline);
  if (freshness.state === 'behind' && !refusedWrite) {
    return { response: { status: parent.status ?? {}, children: [], resyncAfterSeconds: freshness.retryAfterSeconds },
      decision: 'behind', reason: 'the observed Secret predates the token issued last' };
  }
  if (freshness.state === 'awaiting' && !refusedWrite) return awaitingSecret(parent, freshness.retryAfterSeconds, now);

  if (!validation.valid) {
    const invalid = failed(reasons.invalidSpec, `the request is invalid: ${validation.problems.join('; ')}`);
    return keepingSecret({ serviceAccount: invalid, secret: invalid, decision: 'invalid' });
  }
  const spec = validation.spec;
  if (spec.expirationSeconds !== undefined && spec.expirationSeconds > policy.maxTokenDurationSeconds) {
    const tooLong = failed(reasons.durationNotPermitted, `spec.duration: ${spec.expirationSeconds}s is longer than this webhook issues `
      + `(MAX_TOKEN_DURATION: ${policy.maxTokenDurationSeconds}s); nothing was minted, the current Secret is kept`);
    return keepingSecret({ serviceAccount: tooLong, secret: tooLong, decision: 'invalid' });
  }

  // Metacontroller applies children by force under server-side apply: a Secret of that name
  // that is not this request's own would be taken over. Its children are observed; one just
  // written may not be yet, so what is not observed is read live.
  if (!observed.some((child) => child.metadata?.name === spec.secret.name)) {
    let existing: SecretObject | undefined;
    try {
      existing = await context.clusters.host.readSecretMetadata(spec.secret.namespace, spec.secret.name, deadline);
    } catch (error) {
      const problem = conditionForError(error, 'target');
      return keepingSecret({ serviceAccount: waitingFor('the host cluster'), secret: problem, decision: 'error',
        retryAfterHint: retryHint(error), detail: detailOf(error) });
    }
    if (existing && !mayWrite(existing, spec.request)) {
      const taken = failed(reasons.secretNotOwned, `secret ${namespacedName(spec.secret.namespace, spec.secret.name)} exists and is not `
        + `this request's: nothing in it is changed. Choose another spec.secret.name, delete that Secret, or let this request take it over: `
        + `kubectl -n ${spec.secret.namespace} annotate secret ${spec.secret.name} ${adoptAnnotation}=${spec.request.name}`);
      return keepingSecret({ serviceAccount: taken, secret: taken, decision: 'error' });
    }
  }

  let target: TargetCluster;
  try {
    target = await resolveTargetCluster(spec, request.related, context, deadline);
  } catch (error) {
    if (error instanceof TargetClusterGoneError) {
      // Only a Secret minted for the cluster that is gone is dropped: a typo in
      // targetCluster must not cost the Secret that still works for the old one.
      const kept = records.recordOf(existingSecret(observed, spec));
      const mintedForGoneCluster = !kept || kept.targetCluster === error.clusterRef;
      const message = mintedForGoneCluster ? error.message : `${error.message}; the Secret for ${kept.targetCluster || 'the host cluster'} is kept`;
      const gone = failed(reasons.targetClusterNotFound, message);
      return keepingSecret({ serviceAccount: gone, secret: gone, decision: 'error', dropSecret: mintedForGoneCluster });
    }
    const problem = conditionForError(error, 'target');
    return keepingSecret({ serviceAccount: problem, secret: waitingFor('the target cluster'), decision: 'error',
      retryAfterHint: retryHint(error), detail: detailOf(error) });
  }

  let serviceAccountUid: string;
  const events: EventNote[] = [];
  const serviceAccountRef = namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name);
  const where = target.ref ? `DPUCluster ${target.ref}` : 'the host cluster';
  try {
    let created: boolean;
    ({ uid: serviceAccountUid, created } = await ensureServiceAccount(target.client.within(deadline), spec.serviceAccount, spec.request, serviceAccountCacheOf(target)));
    if (created) events.push(normal(eventReasons.serviceAccountCreated, `created service account ${serviceAccountRef} in ${where}`));
  } catch (error) {
    // Credentials the target no longer accepts: read its kubeconfig Secret again next time.
    if (error instanceof KubeApiError && error.statusCode === 401) context.clusters.forget(target.ref);
    return keepingSecret({ serviceAccount: conditionForError(error, 'serviceAccount'),
      secret: waitingFor('the ServiceAccount'), decision: 'error', retryAfterHint: retryHint(error), detail: detailOf(error) });
  }
  // Recorded before anything is minted for it: a spec that changes again cannot leave it behind.
  const current: ServiceAccountEntry = {
    serviceAccount: serviceAccountRef,
    ...(spec.targetCluster ? { targetCluster: target.ref, targetClusterUID: target.uid } : {}),
    clusterID: target.id,
  };
  const ledger = withServiceAccount(holdings.serviceAccounts, current);
  const identity: TokenIdentity = {
    serviceAccount: serviceAccountRef,
    serviceAccountUid,
    targetCluster: target.ref,
    targetClusterUid: target.uid,
    // Compared by value: 1h and 60m are the same lifetime.
    duration: spec.expirationSeconds === undefined ? '' : `${spec.expirationSeconds}s`,
    rotation: spec.rotation,
  };
  const serviceAccountReady = succeeded(`service account ${serviceAccountRef} exists in ${where}`);

  const jitterMs = jitterMsFor(spec.request.uid);
  const lastForcedRotation = dateOf(parent.status?.lastForcedRotationAt);
  const decision = decideToken(records.recordOf(existingSecret(observed, spec)), identity, jitterMs, now,
    lastForcedRotation && new Date(lastForcedRotation.getTime() + policy.minForcedRotationIntervalMs));
  // What the status lost to Metacontroller's cache lag but the observed Secrets show is kept on record.
  let anchors = holdings.anchors;
  let record: TokenRecord;
  if (decision.action === 'keep') {
    record = decision.record;
  } else {
    let anchor: Anchor | undefined;
    try {
      anchor = await createAnchor(target.client.within(deadline), { ...spec.serviceAccount, uid: serviceAccountUid }, spec.request);
      record = await mintToken(target, spec, identity, anchor, deadline);
      anchors = withAnchor(anchors, { ...current, anchor: anchor.name, rotation: spec.rotation, expiresAt: rfc3339(record.expiresAt) });
      events.push(normal(eventReasons.tokenIssued,
        `issued a token for service account ${serviceAccountRef} in ${where}, valid until ${rfc3339(record.expiresAt)} (${decision.why})`));
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 401) context.clusters.forget(target.ref);
      // An anchor without a token: recorded as expired, so a later sync deletes it.
      if (anchor) anchors = withAnchor(anchors, { ...current, anchor: anchor.name, rotation: spec.rotation, expiresAt: rfc3339(now) });
      return failure({ parent, observed, serviceAccount: serviceAccountReady, secret: conditionForError(error, 'token'),
        decision: 'error', retryAfterHint: retryHint(error), detail: detailOf(error), serviceAccounts: ledger, tokenAnchors: anchors, now });
    }
  }

  const cleanup = await deleteLeftovers(ledger, { current, target }, spec.request, context, deadline);
  const observedRecord = records.recordOf(observed.find((child) => child.metadata?.name === spec.secret.name));
  // The token handed out names its anchor itself: recorded even when the status this sync
  // read (from Metacontroller's cache) predates the answer that minted it.
  const returned = records.issuedToken(record);
  const returnedAnchor = returned.anchor;
  if (returnedAnchor && !anchors.some((entry) => entry.anchor === returnedAnchor && sameServiceAccount(entry, current))) {
    anchors = withAnchor(anchors, { ...current, anchor: returnedAnchor, rotation: record.rotation, expiresAt: rfc3339(record.expiresAt) });
  }
  // Only once Metacontroller reports the Secret holding this token may older ones be revoked.
  const observedAnchor = observedRecord?.token === record.token ? returnedAnchor : undefined;
  const currentAnchor = anchors.find((entry) => entry.anchor === observedAnchor && sameServiceAccount(entry, current));
  anchors = markSuperseded(anchors, returnedAnchor, currentAnchor, now);
  const revocation = await deleteAnchors(anchorsToDelete(anchors, returnedAnchor, currentAnchor, limits, now), anchors,
    target, spec.request, context, deadline);
  const serviceAccountResult = cleanup.failed.length > 0
    ? failed(reasons.serviceAccountCleanupFailed,
      `the previous service account ${cleanup.failed.map((entry) => entry.serviceAccount).join(', ')} could not be deleted yet; retrying`)
    : revocation.failedToRevoke.length > 0
      ? failed(reasons.tokenRevocationFailed,
        `the tokens this one replaced still work: their anchor ${revocation.failedToRevoke.join(', ')} could not be deleted yet; retrying`)
      : serviceAccountReady;

  const rotationAllowedAt = decision.action === 'keep' ? decision.rotationAllowedAt : undefined;
  const secret = renderSecret(spec, target.endpoint, record);
  const secretName = namespacedName(spec.secret.namespace, spec.secret.name);
  const secretResult = observedSecretResult({
    secretName,
    observed: observedRecord,
    returned: record,
    previousFailure: previousFailure(parent.status),
    writeRefused: refusedWrite === secretName,
    now,
  });
  const status = buildStatus({
    previous: parent.status,
    generation: spec.request.generation,
    serviceAccount: serviceAccountResult,
    secret: secretResult,
    identity: currentIdentity(spec, target),
    serviceAccounts: cleanup.ledger,
    tokenAnchors: revocation.anchors,
    ...(revocation.revoked ? { revokedAt: now } : {}),
    ...(decision.action === 'mint' && decision.forced ? { forcedRotationAt: now } : {}),
    ...(rotationAllowedAt ? { forcedRotationAllowedAt: rotationAllowedAt } : {}),
    secretName,
    token: returned,
    now,
  });
  // Whatever comes first: the refresh, the end of a replaced token's grace, a rotation held back.
  const wakeUps = [refreshTime(record, jitterMs), nextGraceEnd(revocation.anchors, policy.renewalGraceMs, now), rotationAllowedAt]
    .filter((when): when is Date => when !== undefined);
  const untilRefresh = Math.min(...wakeUps.map((when) => secondsUntil(when, now)));
  const failing = [serviceAccountResult, secretResult].find((result) => !result.ok);
  const resyncAfterSeconds = failing
    ? Math.min(untilRefresh, retryAfterSeconds(failingSince(parent.status, failing.reason), now))
    : untilRefresh;
  // Metacontroller deletes the children an answer leaves out before it applies the new ones: after
  // a rename, the Secret under the old name is kept until the new one is seen holding the token,
  // so a refused write of the new one does not leave the consumer without a working credential.
  const keptUntilRenamed = observedRecord?.token === record.token ? [] : unchanged(observed.filter((child) => {
    const held = records.recordOf(child);
    return child.metadata?.name !== spec.secret.name && held !== undefined && held.expiresAt > now;
  }));
  return {
    response: { status, children: [secret, ...keptUntilRenamed], resyncAfterSeconds },
    decision: decision.action === 'keep' ? 'reused' : 'minted',
    reason: decision.action === 'keep' ? 'token still fresh' : decision.why,
    ...(cleanup.detail ?? revocation.detail ? { detail: cleanup.detail ?? revocation.detail } : {}),
    events: [
      ...events,
      ...cleanup.deleted.map((name) => normal(eventReasons.serviceAccountDeleted, `deleted service account ${name}, which the spec no longer names`)),
      ...(revocation.revoked ? [normal(eventReasons.tokensRevoked, 'revoked the tokens issued before the rotation: the Secret holds the new one')] : []),
    ],
  };
}
