// The sync hook: from the observed request, its Secret and its DPUCluster to the
// desired Secret and status. Decisions are made by the pure functions in
// credential/; this file only orders the steps and calls the cluster layer.
import type { DpuServiceCredentialRequest, DpuServiceCredentialRequestStatus, SecretObject, ServiceAccountEntry } from '../api.js';
import {
  leftoverServiceAccounts, recordedServiceAccounts, sameServiceAccount, withoutServiceAccount, withServiceAccount,
} from '../credential/service-account-ledger.js';
import { crossNamespaceReferences, grantVerb, missingGrantMessage, requesterOf, type Reference } from '../credential/tenancy.js';
import { anchorsOf, anchorsToDelete, withAnchor, type AnchorAction, type AnchorEntry } from '../credential/token-anchors.js';
import { decideToken } from '../credential/decide.js';
import { CredentialError } from '../credential/errors.js';
import { namespacedName, tokenAnnotations } from '../credential/names.js';
import { renderSecret } from '../credential/render.js';
import { inputFreshness, observedSecretResult, type IssuedToken } from '../credential/observed-secret.js';
import { jitterMsFor, refreshTime, retryAfterSeconds, secondsUntil } from '../credential/schedule.js';
import { buildStatus, conditionTypes, failed, failingSince, previousFailure, reasons, rfc3339, succeeded, type ConditionResult, type StatusInput } from '../credential/status.js';
import { readTokenRecord, type TokenIdentity, type TokenRecord } from '../credential/token-record.js';
import { validateRequest, type ValidSpec } from '../credential/validate.js';
import { serviceAccountCacheOf, TargetClusterNotReadyError, type TargetCluster } from '../kube/clusters.js';
import { InvalidKubeconfigError } from '../kube/kubeconfig.js';
import { KubeApiError, KubeUnreachableError, type Deadline } from '../kube/rest.js';
import { deleteManagedServiceAccount, ensureServiceAccount } from '../kube/service-accounts.js';
import { createAnchor, deleteAnchor, type Anchor } from '../kube/token-anchors.js';
import { boundSecretOf, requestToken, serviceAccountUidOf, tokenIdOf } from '../kube/tokens.js';
import { secretChildKey, type SyncRequest, type SyncResponse } from '../metacontroller.js';
import { unchanged } from './children.js';
import { clusterOf, resolveTargetCluster, serviceAccountRefOf, TargetClusterGoneError, type HookContext } from './context.js';

/** `behind`: the input predates this webhook's last answer; nothing is answered (HTTP 429, retry). */
export type SyncDecision = 'minted' | 'reused' | 'awaiting' | 'behind' | 'invalid' | 'error' | 'finalized';

export interface SyncOutcome {
  response: SyncResponse;
  decision: SyncDecision;
  /** Why a token was minted, or the failing condition's reason (a fixed word: it labels metrics). */
  reason: string;
  /** What exactly failed, for the log (never a credential). */
  detail?: string;
}

type Step = 'target' | 'serviceAccount' | 'token';

/** Maps a failure to the condition it sets; anything unexpected is a bug and propagates (HTTP 500). */
function conditionForError(error: unknown, step: Step): ConditionResult {
  if (error instanceof CredentialError) return failed(error.reason, error.message);
  if (error instanceof TargetClusterNotReadyError) return failed(reasons.targetClusterNotReady, error.message);
  if (error instanceof InvalidKubeconfigError) return failed(reasons.invalidTargetKubeconfig, error.message);
  if (error instanceof KubeUnreachableError) {
    return step === 'target'
      ? failed(reasons.hostClusterUnreachable, `${error.message}; retrying`)
      : failed(reasons.targetClusterUnreachable, `${error.message}; the current Secret is kept, retrying`);
  }
  if (error instanceof KubeApiError) {
    const where = step === 'target' ? 'reading the host cluster' : 'in the target cluster';
    const message = `${where}: ${error.message} (HTTP ${error.statusCode}); retrying`;
    if (step === 'token') return failed(reasons.tokenRequestFailed, message);
    if (step === 'serviceAccount') return failed(reasons.serviceAccountReconcileFailed, message);
    return failed(reasons.hostClusterUnreachable, message);
  }
  throw error;
}

const retryHint = (error: unknown) => (error instanceof KubeApiError ? error.retryAfterSeconds : undefined);
const detailOf = (error: unknown) => (error instanceof KubeUnreachableError ? `${error.message}: ${error.detail}` : (error as Error).message);

/** The output Secret as observed: under the spec's name, or under an earlier name (spec.secret.name changed). */
function existingSecret(observed: SecretObject[], spec: ValidSpec): SecretObject | undefined {
  return observed.find((secret) => secret.metadata?.name === spec.secret.name)
    ?? observed.find((secret) => secret.metadata?.annotations?.[tokenAnnotations.issuedAt]);
}

/** The tokens the observed children hold. */
function observedTokens(observed: SecretObject[]): IssuedToken[] {
  return observed.map(readTokenRecord).filter((record): record is TokenRecord => record !== undefined).map(issuedToken);
}

const issuedToken = (record: TokenRecord): IssuedToken & Pick<TokenRecord, 'expiresAt'> => {
  const tokenId = tokenIdOf(record.token);
  return { issuedAt: record.issuedAt, expiresAt: record.expiresAt, ...(tokenId ? { tokenId } : {}) };
};

/** The token this webhook issued last, as the status recorded it. */
function lastIssued(status: DpuServiceCredentialRequestStatus | undefined): IssuedToken | undefined {
  const issuedAt = dateOf(status?.issuedAt);
  return issuedAt ? { issuedAt, ...(status?.tokenID ? { tokenId: status.tokenID } : {}) } : undefined;
}

function dateOf(text: string | undefined): Date | undefined {
  const date = text ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
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

interface Cleanup {
  ledger: ServiceAccountEntry[];
  /** What could not be deleted (it stays recorded, and is tried again at the next sync). */
  failed: ServiceAccountEntry[];
  detail?: string;
}

/**
 * Deletes every recorded ServiceAccount but the one the current token belongs to, each in
 * the cluster where it was made. Done after the new credential exists, so a failure never
 * leaves the request without one.
 */
async function deleteLeftovers(ledger: ServiceAccountEntry[], current: ServiceAccountEntry, target: TargetCluster,
  spec: ValidSpec, context: HookContext, deadline: Deadline): Promise<Cleanup> {
  const cleanup: Cleanup = { ledger, failed: [] };
  for (const entry of leftoverServiceAccounts(ledger, current)) {
    try {
      const cluster = entry.clusterID === target.id ? target : await clusterOf(context.clusters, entry, deadline);
      // Another reference to the API server the current token lives on: the same ServiceAccount, kept.
      const isCurrent = cluster?.id === current.clusterID && entry.serviceAccount === current.serviceAccount;
      // No cluster: it is gone, and the ServiceAccount with it.
      if (cluster && !isCurrent) {
        await deleteManagedServiceAccount(cluster.client.within(deadline), serviceAccountRefOf(entry), spec.request, cluster.serviceAccounts);
      }
      cleanup.ledger = withoutServiceAccount(cleanup.ledger, entry);
    } catch (error) {
      cleanup.failed.push(entry);
      cleanup.detail ??= detailOf(error);
    }
  }
  return cleanup;
}

interface Revocation {
  anchors: AnchorEntry[];
  /** Whether tokens issued before a rotation were revoked now. */
  revoked: boolean;
  /** "namespace/name" of the anchors of rotated-away tokens that could not be deleted. */
  failedToRevoke: string[];
  detail?: string;
}

/** Deletes the anchors `anchorsToDelete` chose, each in its cluster; what fails stays recorded for the next sync. */
async function deleteAnchors(toDelete: { entry: AnchorEntry; action: AnchorAction }[], anchors: AnchorEntry[], target: TargetCluster | undefined,
  context: HookContext, deadline: Deadline): Promise<Revocation> {
  const revocation: Revocation = { anchors, revoked: false, failedToRevoke: [] };
  for (const { entry, action } of toDelete) {
    const { namespace } = serviceAccountRefOf(entry);
    try {
      const cluster = target && entry.clusterID === target.id ? target : await clusterOf(context.clusters, entry, deadline);
      // No cluster: it is gone, and the token with it.
      if (cluster) await deleteAnchor(cluster.client.within(deadline), namespace, entry.anchor);
      revocation.anchors = revocation.anchors.filter((known) => known !== entry);
      if (action === 'revoke') revocation.revoked = true;
    } catch (error) {
      if (action === 'revoke') revocation.failedToRevoke.push(namespacedName(namespace, entry.anchor));
      revocation.detail ??= detailOf(error);
    }
  }
  return revocation;
}

/** The first reference of the spec outside its namespace that no grant allows, if any. */
async function firstMissingGrant(spec: ValidSpec, context: HookContext, deadline: Deadline): Promise<Reference | undefined> {
  const requester = requesterOf(spec.request.namespace);
  for (const reference of crossNamespaceReferences(spec)) {
    if (!await context.clusters.host.isAllowed(requester, grantVerb, reference, deadline)) return reference;
  }
  return undefined;
}

/**
 * The grant is gone (or never was): nothing is minted, the Secret is dropped, and the
 * tokens issued under the grant are revoked.
 */
async function referenceRefused(parent: DpuServiceCredentialRequest, spec: ValidSpec, reference: Reference,
  context: HookContext, deadline: Deadline, now: Date): Promise<SyncOutcome> {
  const anchors = anchorsOf(parent.status);
  const revocation = await deleteAnchors(anchors.map((entry) => ({ entry, action: 'revoke' as const })), anchors, undefined, context, deadline);
  const refused = failed(reasons.referenceNotPermitted, missingGrantMessage(spec.request.namespace, reference));
  const status = buildStatus({
    previous: parent.status,
    generation: spec.request.generation,
    serviceAccount: refused,
    secret: refused,
    tokenAnchors: revocation.anchors,
    ...(revocation.revoked ? { revokedAt: now } : {}),
    now,
  });
  return {
    response: { status, children: [], resyncAfterSeconds: retryAfterSeconds(failingSince(parent.status, reasons.referenceNotPermitted), now) },
    decision: 'error',
    reason: reasons.referenceNotPermitted,
    ...(revocation.detail ? { detail: revocation.detail } : {}),
  };
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
  const now = context.now();
  const parent = request.parent;
  const observed = Object.values(request.children?.[secretChildKey] ?? {});

  // Nothing below may act on children older than this webhook's last answer (see observed-secret.ts).
  const secretWasObserved = parent.status?.conditions?.some((c) => c.type === conditionTypes.secret && c.status === 'True') ?? false;
  const freshness = inputFreshness(lastIssued(parent.status), observedTokens(observed), secretWasObserved, now);
  if (freshness.state === 'behind') {
    return { response: { status: parent.status ?? {}, children: [], resyncAfterSeconds: freshness.retryAfterSeconds },
      decision: 'behind', reason: 'the observed Secret predates the token issued last' };
  }
  if (freshness.state === 'awaiting') return awaitingSecret(parent, freshness.retryAfterSeconds, now);

  const validation = validateRequest(parent);
  if (!validation.valid) {
    const invalid = failed(reasons.invalidSpec, `the request is invalid: ${validation.problems.join('; ')}`);
    return failure({ parent, observed, serviceAccount: invalid, secret: invalid, decision: 'invalid', now });
  }
  const spec = validation.spec;

  // Tenancy: what lies outside the request's namespace needs a grant there, checked live.
  let missingGrant: Reference | undefined;
  try {
    missingGrant = await firstMissingGrant(spec, context, deadline);
  } catch (error) {
    const problem = conditionForError(error, 'target');
    return failure({ parent, observed, serviceAccount: problem, secret: waitingFor('the grant check'), decision: 'error',
      retryAfterHint: retryHint(error), detail: detailOf(error), now });
  }
  if (missingGrant) return referenceRefused(parent, spec, missingGrant, context, deadline, now);

  let target: TargetCluster;
  try {
    target = await resolveTargetCluster(spec, request.related, context, deadline);
  } catch (error) {
    if (error instanceof TargetClusterGoneError) {
      // Only a Secret minted for the cluster that is gone is dropped: a typo in
      // targetCluster must not cost the Secret that still works for the old one.
      const kept = readTokenRecord(existingSecret(observed, spec));
      const mintedForGoneCluster = !kept || kept.targetCluster === error.clusterRef;
      const message = mintedForGoneCluster ? error.message : `${error.message}; the Secret for ${kept.targetCluster || 'the host cluster'} is kept`;
      const gone = failed(reasons.targetClusterNotFound, message);
      return failure({ parent, observed, serviceAccount: gone, secret: gone, decision: 'error', dropSecret: mintedForGoneCluster, now });
    }
    const problem = conditionForError(error, 'target');
    return failure({ parent, observed, serviceAccount: problem, secret: waitingFor('the target cluster'), decision: 'error',
      retryAfterHint: retryHint(error), detail: detailOf(error), now });
  }

  let serviceAccountUid: string;
  try {
    serviceAccountUid = await ensureServiceAccount(target.client.within(deadline), spec.serviceAccount, spec.request, serviceAccountCacheOf(target));
  } catch (error) {
    // Credentials the target no longer accepts: read its kubeconfig Secret again next time.
    if (error instanceof KubeApiError && error.statusCode === 401) context.clusters.forget(target.ref);
    return failure({ parent, observed, serviceAccount: conditionForError(error, 'serviceAccount'),
      secret: waitingFor('the ServiceAccount'), decision: 'error', retryAfterHint: retryHint(error), detail: detailOf(error), now });
  }
  const serviceAccountRef = namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name);
  // Recorded before anything is minted for it: a spec that changes again cannot leave it behind.
  const current: ServiceAccountEntry = {
    serviceAccount: serviceAccountRef,
    ...(spec.targetCluster ? { targetCluster: target.ref, targetClusterUID: target.uid } : {}),
    clusterID: target.id,
  };
  const ledger = withServiceAccount(recordedServiceAccounts(parent.status), current);
  const identity: TokenIdentity = {
    serviceAccount: serviceAccountRef,
    serviceAccountUid,
    targetCluster: target.ref,
    targetClusterUid: target.uid,
    // Compared by value: 1h and 60m are the same lifetime.
    duration: spec.expirationSeconds === undefined ? '' : `${spec.expirationSeconds}s`,
    rotation: spec.rotation,
  };
  const serviceAccountReady = succeeded(`service account ${serviceAccountRef} exists in ${target.ref ? `DPUCluster ${target.ref}` : 'the host cluster'}`);

  const jitterMs = jitterMsFor(spec.request.uid);
  const decision = decideToken(readTokenRecord(existingSecret(observed, spec)), identity, jitterMs, now);
  let anchors = anchorsOf(parent.status);
  let record: TokenRecord;
  if (decision.action === 'keep') {
    record = decision.record;
  } else {
    let anchor: Anchor | undefined;
    try {
      anchor = await createAnchor(target.client.within(deadline), { ...spec.serviceAccount, uid: serviceAccountUid }, spec.request);
      record = await mintToken(target, spec, identity, anchor, deadline);
      anchors = withAnchor(anchors, { ...current, anchor: anchor.name, rotation: spec.rotation, expiresAt: rfc3339(record.expiresAt) });
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 401) context.clusters.forget(target.ref);
      // An anchor without a token: recorded as expired, so a later sync deletes it.
      if (anchor) anchors = withAnchor(anchors, { ...current, anchor: anchor.name, rotation: spec.rotation, expiresAt: rfc3339(now) });
      return failure({ parent, observed, serviceAccount: serviceAccountReady, secret: conditionForError(error, 'token'),
        decision: 'error', retryAfterHint: retryHint(error), detail: detailOf(error), serviceAccounts: ledger, tokenAnchors: anchors, now });
    }
  }

  const cleanup = await deleteLeftovers(ledger, current, target, spec, context, deadline);
  const observedRecord = readTokenRecord(observed.find((child) => child.metadata?.name === spec.secret.name));
  // Only once Metacontroller reports the Secret holding this token may older ones be revoked.
  const returnedAnchor = boundSecretOf(record.token);
  const observedAnchor = observedRecord?.token === record.token ? returnedAnchor : undefined;
  const currentAnchor = anchors.find((entry) => entry.anchor === observedAnchor && sameServiceAccount(entry, current));
  const revocation = await deleteAnchors(anchorsToDelete(anchors, returnedAnchor, currentAnchor, now), anchors, target, context, deadline);
  const serviceAccountResult = cleanup.failed.length > 0
    ? failed(reasons.serviceAccountCleanupFailed,
      `the previous service account ${cleanup.failed.map((entry) => entry.serviceAccount).join(', ')} could not be deleted yet; retrying`)
    : revocation.failedToRevoke.length > 0
      ? failed(reasons.tokenRevocationFailed,
        `the tokens issued before the rotation still work: their anchor ${revocation.failedToRevoke.join(', ')} could not be deleted yet; retrying`)
      : serviceAccountReady;

  const secret = renderSecret(spec, target.endpoint, record);
  const secretName = namespacedName(spec.secret.namespace, spec.secret.name);
  const secretResult = observedSecretResult({
    secretName,
    observed: observedRecord,
    returned: record,
    previousFailure: previousFailure(parent.status),
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
    secretName,
    token: issuedToken(record),
    now,
  });
  const untilRefresh = secondsUntil(refreshTime(record, jitterMs), now);
  const failing = [serviceAccountResult, secretResult].find((result) => !result.ok);
  const resyncAfterSeconds = failing
    ? Math.min(untilRefresh, retryAfterSeconds(failingSince(parent.status, failing.reason), now))
    : untilRefresh;
  return {
    response: { status, children: [secret], resyncAfterSeconds },
    decision: decision.action === 'keep' ? 'reused' : 'minted',
    reason: decision.action === 'keep' ? 'token still fresh' : decision.why,
    ...(cleanup.detail ?? revocation.detail ? { detail: cleanup.detail ?? revocation.detail } : {}),
  };
}
