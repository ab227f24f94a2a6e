// Tenancy at every sync, decided first: for everything the request holds (the
// ServiceAccounts and token anchors its status records, the tokens in its observed Secrets)
// and everything its spec asks for. A scope without its grant (or in a protected
// namespace) ends the sync with a refusal that takes back what was issued, so no other
// early answer (an invalid spec, a stale input) can keep a token alive past a withdrawal.
import type { DpuServiceCredentialRequest, ServiceAccountEntry } from '../api.js';
import { requestRefOf } from '../credential/names.js';
import { recordedServiceAccounts, sameServiceAccount } from '../credential/service-account-ledger.js';
import { buildStatus, failed, failingSince, reasons, retryAfterSeconds, type ConditionResult } from '../credential/status.js';
import {
  grantsNeeded, grantVerb, protectedRefusal, referenceKey, refusalMessage, requesterOf, scopeOfRecord, type Refusal, type Scope,
} from '../credential/tenancy.js';
import { anchorEntryOf, anchorsOf, type AnchorEntry } from '../credential/token-anchors.js';
import { rfc3339 } from '../credential/time.js';
import type { TokenRecord } from '../credential/token.js';
import type { Deadline } from '../kube/rest.js';
import { policyOf, type HookContext } from './context.js';
import { deleteAnchors, deleteLeftovers, tamperingEvents, tamperingNote } from './leftovers.js';
import type { SyncOutcome } from './outcome.js';

/** What a request holds: its ServiceAccounts and the anchors of its tokens, as recorded and as observed. */
export interface Holdings {
  serviceAccounts: ServiceAccountEntry[];
  anchors: AnchorEntry[];
}

/**
 * The status's records, plus what the observed Secrets' tokens show: Metacontroller's
 * cached parent may lack the ServiceAccount and anchor of the token minted last. An entry
 * learnt from a token gets no UID: a token's claims are read without checking its signature,
 * and whoever may edit the Secret could name another's object there; only UIDs from the API
 * server's own answers to the webhook (status) delete whatever the labels say (removal.ts).
 */
export function holdingsOf(parent: DpuServiceCredentialRequest, observedTokens: { record: TokenRecord; anchor?: string }[]): Holdings {
  const serviceAccounts = recordedServiceAccounts(parent.status);
  const anchors = anchorsOf(parent.status);
  for (const { record, anchor } of observedTokens) {
    const entry: ServiceAccountEntry = {
      serviceAccount: record.serviceAccount,
      ...(record.targetCluster ? { targetCluster: record.targetCluster, targetClusterUID: record.targetClusterUid } : {}),
    };
    if (!serviceAccounts.some((known) => sameServiceAccount(known, entry))) serviceAccounts.push(entry);
    if (anchor && !anchors.some((known) => known.anchor === anchor && sameServiceAccount(known, entry))) {
      anchors.push(anchorEntryOf(entry, { name: anchor }, record.rotation, rfc3339(record.expiresAt)));
    }
  }
  return { serviceAccounts, anchors };
}

export function scopesOf(requestNamespace: string, holdings: Holdings): Scope[] {
  return [...holdings.serviceAccounts, ...holdings.anchors]
    .map((entry) => scopeOfRecord(requestNamespace, entry.serviceAccount, entry.targetCluster));
}

/** The first refusal among `scopes`: protected namespaces first (no call), then each grant asked once. */
export async function firstRefusal(requestNamespace: string, scopes: Scope[], context: HookContext, deadline: Deadline): Promise<Refusal | undefined> {
  const { protectedNamespaces } = policyOf(context);
  for (const scope of scopes) {
    const refusal = protectedRefusal(scope, protectedNamespaces);
    if (refusal) return refusal;
  }
  const requester = requesterOf(requestNamespace);
  const asked = new Set<string>();
  for (const reference of scopes.flatMap(grantsNeeded)) {
    const key = referenceKey(reference);
    if (asked.has(key)) continue;
    asked.add(key);
    if (!await context.clusters.host.isAllowed(requester, grantVerb, reference, deadline)) return { kind: 'ungranted', reference };
  }
  return undefined;
}

/** A scope without its grant: everything issued is taken back (revokeEverything). */
export function refuse(parent: DpuServiceCredentialRequest, refusal: Refusal, holdings: Holdings,
  context: HookContext, deadline: Deadline, now: Date): Promise<SyncOutcome> {
  const refused = failed(reasons.referenceNotPermitted, refusalMessage(parent.metadata?.namespace ?? '', refusal));
  return revokeEverything(parent, refused, holdings, context, deadline, now);
}

/**
 * Nothing is minted, the Secret is dropped, and everything issued is taken back: every
 * anchor (revoking its token) and every ServiceAccount this request made (revoking any
 * token bound to it, anchors lost from a stale status and 0.1.0's unbound ones included),
 * each by the UID recorded when it was made, whatever its labels say now (leftovers.ts).
 * What fails stays recorded and is tried at the next sync. `refused`: the failing
 * condition the answer reports.
 */
export async function revokeEverything(parent: DpuServiceCredentialRequest, refused: ConditionResult, holdings: Holdings,
  context: HookContext, deadline: Deadline, now: Date): Promise<SyncOutcome> {
  const request = requestRefOf(parent);
  const revocation = await deleteAnchors(holdings.anchors.map((entry) => ({ entry, action: 'revoke' as const })), holdings.anchors,
    undefined, request, context, deadline);
  const cleanup = await deleteLeftovers(holdings.serviceAccounts, undefined, request, context, deadline);
  const tampering = tamperingNote(cleanup, revocation);
  const status = buildStatus({
    previous: parent.status,
    generation: parent.metadata?.generation ?? 0,
    serviceAccount: tampering ? { ...refused, message: `${refused.message}; ${tampering}` } : refused,
    secret: refused,
    // No identity: what was not deleted stays in the ledger, and nothing else may be read back as held.
    identity: {},
    serviceAccounts: cleanup.ledger,
    tokenAnchors: revocation.anchors,
    ...(revocation.revoked || cleanup.deleted.length > 0 ? { revokedAt: now } : {}),
    now,
  });
  const detail = revocation.detail ?? cleanup.detail;
  return {
    response: { status, children: [], resyncAfterSeconds: retryAfterSeconds(failingSince(parent.status, refused.reason), now) },
    decision: 'error',
    reason: refused.reason,
    ...(detail ? { detail } : {}),
    events: tamperingEvents(cleanup, revocation),
  };
}
