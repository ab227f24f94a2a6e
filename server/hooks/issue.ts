// Issuing, once the input checks passed: resolve the target cluster, ensure the ServiceAccount,
// keep the token or mint one (within the limits of mint-limit.ts), and work out what the new
// credential replaces. It creates what it issues; what is taken back is left to the effects
// (effects.ts), but the anchor of a token minted and never seen, revoked before the next mint
// (mint-limit.ts); what is answered is left to answer.ts.
import type { ServiceAccountEntry } from '../api.js';
import { eventReasons, normal, warning, type EventNote } from '../credential/events.js';
import { namespacedName } from '../credential/names.js';
import { adoptServiceAccountAnnotation } from '../credential/service-account-claim.js';
import { ledgerOf, sameServiceAccount, withServiceAccount } from '../credential/service-account-ledger.js';
import { failed, reasons, rfc3339, succeeded } from '../credential/status.js';
import { trustedServiceAccountUid } from '../credential/tenancy.js';
import { anchorEntryOf, anchorsToDelete, markSuperseded, withAnchor, type AnchorEntry } from '../credential/token-anchors.js';
import { dateOf } from '../credential/token-record.js';
import { decideToken, jitterMsFor, tokenIdentityFor, type TokenIdentity, type TokenRecord } from '../credential/token.js';
import type { ValidSpec } from '../credential/validate.js';
import type { EnsuredServiceAccount } from '../kube/service-accounts.js';
import type { Anchor } from '../kube/token-anchors.js';
import { serviceAccountUidOf } from '../kube/tokens.js';
import type { CallTarget } from './bound-clusters.js';
import { issuedToken } from './children.js';
import { resolveTargetCluster, TargetClusterGoneError } from './context.js';
import { ServiceAccountReplacedError } from './error-outcomes.js';
import {
  failedCall, hasEnded, stopped, type Ended, type EnsuredAccount, type Freshness, type HeldOrMinted, type Issued,
} from './facts.js';
import { claimAnchor } from './mint-limit.js';
import type { SyncRun } from './run.js';

/** The credential the Secret will hold, for the request as checked; or why none is issued. */
export async function issue(run: SyncRun, spec: ValidSpec, freshness: Freshness): Promise<Issued | Ended> {
  const target = await resolveTarget(run, spec);
  if (hasEnded(target)) return target;
  const account = await ensureAccount(run, spec, target);
  if (hasEnded(account)) return account;
  const token = await keepOrMint(run, spec, target, account, freshness);
  if (hasEnded(token)) return token;
  return replacedBy(run, { spec, target, account, token, freshness });
}

async function resolveTarget(run: SyncRun, spec: ValidSpec): Promise<CallTarget | Ended> {
  try {
    return await resolveTargetCluster(spec, run.request.related, run.clusters);
  } catch (error) {
    if (!(error instanceof TargetClusterGoneError)) return failedCall({ error, phase: 'target', sweep: true });
    // Only a Secret minted for the cluster that is gone is dropped: a typo in
    // targetCluster must not cost the Secret that still works for the old one.
    const kept = run.observed.held?.record;
    const mintedForGoneCluster = !kept || kept.targetCluster === error.clusterRef;
    const message = mintedForGoneCluster ? error.message : `${error.message}; the Secret for ${kept.targetCluster || 'the host cluster'} is kept`;
    const gone = failed(reasons.targetClusterNotFound, message);
    return stopped({ serviceAccount: gone, secret: gone, decision: 'error', dropSecret: mintedForGoneCluster, sweep: true, forget: error.clusterRef });
  }
}

async function ensureAccount(run: SyncRun, spec: ValidSpec, target: CallTarget): Promise<EnsuredAccount | Ended> {
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
    ensured = await target.ensureServiceAccount({ ...spec.serviceAccount, ...(recordedUid ? { uid: recordedUid } : {}) }, spec.request);
  } catch (error) {
    return failedCall({ error, phase: 'serviceAccount', target, sweep: true });
  }
  // What it is deleted by later, whatever its labels say by then.
  const current: ServiceAccountEntry = { ...place, ...(ensured.uid ? { serviceAccountUID: ensured.uid } : {}) };
  return {
    ref,
    current,
    ledger: withServiceAccount(run.holdings.serviceAccounts, current),
    identity: tokenIdentityFor(spec, ensured.uid, target),
    ready: succeeded(`service account ${ref} exists in ${where}`),
    where,
    events: accountEvents(ensured, ref, where),
  };
}

function accountEvents(ensured: EnsuredServiceAccount, ref: string, where: string): EventNote[] {
  // Nearly every sync finds its ServiceAccount as it left it: nothing to build.
  if (!ensured.created && !ensured.adopted && !ensured.tampered) return [];
  return [
    ...(ensured.created ? [normal(eventReasons.serviceAccountCreated, `created service account ${ref} in ${where}`)] : []),
    ...(ensured.adopted ? [normal(eventReasons.serviceAccountAdopted, `adopted service account ${ref} in ${where} `
      + `(its ${adoptServiceAccountAnnotation} annotation names this request): labelled as this request's, the same object (UID ${ensured.uid})`)] : []),
    ...(ensured.tampered ? [warning(eventReasons.serviceAccountTampered, `the service account ${ref} in ${where} no longer carried `
      + `this request's labels (tampering): it has the UID recorded for it, so it is still this request's and is used; `
      + (ensured.tampered === 'relabelled' ? 'its labels were restored' : 'its labels could not be restored (the patch was refused)'))] : []),
  ];
}

async function keepOrMint(run: SyncRun, spec: ValidSpec, target: CallTarget, account: EnsuredAccount, freshness: Freshness):
  Promise<HeldOrMinted | Ended> {
  const held = run.observed.held;
  const jitterMs = jitterMsFor(spec.request.uid);
  const decide = (lastForcedRotation: Date | undefined) => decideToken(held?.record, account.identity, jitterMs, run.now,
    lastForcedRotation && new Date(lastForcedRotation.getTime() + run.policy.minForcedRotationIntervalMs));
  const decision = decide(dateOf(run.parent.status?.lastForcedRotationAt));
  // What the status lost to Metacontroller's cache lag but the observed Secrets show is kept on record.
  const anchors = run.holdings.anchors;
  if (decision.action === 'keep') return { decision, record: decision.record, jitterMs, anchors, events: [] };
  const anchored = (recorded: AnchorEntry[], anchor: Anchor, expiresAt: Date) =>
    withAnchor(recorded, anchorEntryOf(account.current, anchor, spec.rotation, rfc3339(expiresAt)));
  let made: { anchor: Anchor; anchors: AnchorEntry[] } | undefined;
  try {
    // The limits that hold whatever status this sync read (mint-limit.ts).
    const claim = await claimAnchor(run, spec, target, {
      decision,
      heldAnchor: held?.token?.anchor,
      serviceAccount: { ...spec.serviceAccount, uid: account.identity.serviceAccountUid },
      holdBack: decide,
      refusedWrite: freshness.refusedWrite === namespacedName(spec.secret.namespace, spec.secret.name),
      serviceAccountReady: account.ready,
      ledger: account.ledger,
      where: account.where,
    });
    if (hasEnded(claim)) return claim;
    if ('kept' in claim) return { decision: claim.kept, record: claim.kept.record, jitterMs, anchors, events: [] };
    made = claim;
    const record = await mintToken(target, spec, account.identity, claim.anchor);
    const issued = normal(eventReasons.tokenIssued, `issued a token for service account ${account.ref} in ${account.where}, `
      + `valid until ${rfc3339(record.expiresAt)} (${decision.why})`);
    return { decision, record, jitterMs, anchors: anchored(claim.anchors, claim.anchor, record.expiresAt), events: [issued] };
  } catch (error) {
    // An anchor without a token: recorded as expired, so a later sync deletes it.
    const tokenAnchors = made ? anchored(made.anchors, made.anchor, run.now) : anchors;
    return failedCall({ error, phase: 'token', target, serviceAccountReady: account.ready,
      record: { serviceAccounts: account.ledger, tokenAnchors }, sweep: false });
  }
}

/** Mints a token bound to `anchor` and records what it was minted for. Times come from the response. */
async function mintToken(target: CallTarget, spec: ValidSpec, identity: TokenIdentity, anchor: Anchor): Promise<TokenRecord> {
  const minted = await target.requestToken(spec.serviceAccount, spec.expirationSeconds, anchor);
  // The ownership check may have read a cache a moment behind: a token for any other
  // ServiceAccount of that name (recreated meanwhile, perhaps unmanaged) is thrown away.
  const mintedFor = serviceAccountUidOf(minted.token);
  if (mintedFor && mintedFor !== identity.serviceAccountUid) throw new ServiceAccountReplacedError(identity.serviceAccount);
  const issuedAt = new Date(minted.expiresAt.getTime() - minted.expirationSeconds * 1_000);
  return { ...identity, token: minted.token, issuedAt, expiresAt: minted.expiresAt };
}

/**
 * What the new credential replaces, once it exists: the anchors of tokens past their grace (the
 * effects delete them, and the ServiceAccounts the spec no longer names). Only once Metacontroller
 * reports the Secret holding this token are older ones revoked.
 */
function replacedBy(run: SyncRun, found: Omit<Issued, 'returned' | 'observedRecord' | 'anchors' | 'replaced'>): Issued {
  const { account, token } = found;
  const { current, held } = run.observed;
  const observedRecord = current?.record;
  // A kept token was read from its Secret already; a new one is read here.
  const returned = held?.token && token.record === held.record ? held.token : issuedToken(token.record);
  // The token handed out names its anchor itself: recorded even when the status this sync read (from
  // Metacontroller's cache) predates the answer that minted it. Without the UID its claims name (holdingsOf
  // says why): a token minted now is on record with its UID already.
  const onRecord = returned.anchor && !token.anchors.some((entry) => entry.anchor === returned.anchor && sameServiceAccount(entry, account.current))
    ? withAnchor(token.anchors, anchorEntryOf(account.current, { name: returned.anchor }, token.record.rotation, rfc3339(token.record.expiresAt)))
    : token.anchors;
  const observedAnchor = observedRecord?.token === token.record.token ? returned.anchor : undefined;
  const currentAnchor = onRecord.find((entry) => entry.anchor === observedAnchor && sameServiceAccount(entry, account.current));
  const anchors = markSuperseded(onRecord, returned.anchor, currentAnchor, run.now);
  const replaced = anchorsToDelete(anchors, returned.anchor, currentAnchor, run.limits, run.now);
  return { ...found, returned, observedRecord, anchors, replaced };
}
