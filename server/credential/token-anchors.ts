// Revocation. Every token is bound to an anchor of its own: a Secret in the ServiceAccount's
// namespace of the target cluster (TokenRequest boundObjectRef). The API server accepts a
// bound token only while its anchor exists, so deleting the anchor revokes the token at
// once. The anchors of the tokens issued and not yet revoked are recorded in the status.
//
// What is revoked, and when: after a rotation (the rotate annotation, another ServiceAccount
// or another cluster) every earlier token, as soon as Metacontroller reports the Secret
// holding the new one, never before, so a rotation causes no outage. After a routine
// renewal the previous token keeps working for a grace period from the sync that first
// sees the Secret holding its successor (Policy.renewalGraceMs: Pods that mount the
// Secret see the renewed token only when the kubelet refreshes the volume, about a minute
// later, and clients read their file again), then its anchor is deleted: outside that
// window a request has one working token. Anchors of expired tokens are deleted too.
//
// At most one token no Secret was seen holding exists per request at a time, whatever the
// status says (Metacontroller's cache may hand a sync a stale one): the anchor of the next
// token has a name fixed by the request and the token the observed Secret holds
// (anchorNameFor). While that Secret holds the same token, every new token is bound to an
// anchor of that one name: one already there is a token minted since and never observed,
// revoked before the next is minted (hooks/sync.ts), and the name's creationTimestamp in the
// target says when it was minted (status.ts unobservedMintRetryAt backs off from it).
import { hash } from 'node:crypto';
import { isRecord, type DpuServiceCredentialRequestStatus, type ServiceAccountEntry, type TokenAnchorEntry } from '../api.js';
import { sameServiceAccount } from './service-account-ledger.js';
import { rfc3339 } from './time.js';

/**
 * A token's anchor, with what it was issued for: `anchor` names the Secret (in the
 * ServiceAccount's namespace), `rotation` the forced-rotation value the token was minted
 * under, `expiresAt` when the token expires (RFC 3339).
 */
export type AnchorEntry = TokenAnchorEntry;

const isAnchorEntry = (value: unknown): value is AnchorEntry => isRecord(value)
  && typeof value.serviceAccount === 'string' && /^[^/]+\/[^/]+$/.test(value.serviceAccount)
  && typeof value.anchor === 'string' && value.anchor !== '' && typeof value.rotation === 'string'
  && typeof value.expiresAt === 'string' && !Number.isNaN(Date.parse(value.expiresAt))
  && (value.supersededAt === undefined || (typeof value.supersededAt === 'string' && !Number.isNaN(Date.parse(value.supersededAt))))
  && ['targetCluster', 'targetClusterUID', 'clusterID', 'anchorUID'].every((field) => value[field] === undefined || typeof value[field] === 'string');

export function anchorsOf(status: DpuServiceCredentialRequestStatus | undefined): AnchorEntry[] {
  return Array.isArray(status?.tokenAnchors) ? status.tokenAnchors.filter(isAnchorEntry) : [];
}

/**
 * The entry of a token of the ServiceAccount `account` bound to `anchor`: where it lives (not the
 * ServiceAccount's UID, which the ledger keeps), and the anchor's UID when known (what is deleted).
 */
export function anchorEntryOf(account: ServiceAccountEntry, anchor: { name: string; uid?: string | undefined },
  rotation: string, expiresAt: string): AnchorEntry {
  const { serviceAccountUID: _uid, ...where } = account;
  return { ...where, anchor: anchor.name, ...(anchor.uid ? { anchorUID: anchor.uid } : {}), rotation, expiresAt };
}

export function withAnchor(anchors: AnchorEntry[], entry: AnchorEntry): AnchorEntry[] {
  return [...anchors.filter((known) => known.anchor !== entry.anchor || !sameServiceAccount(known, entry)), entry];
}

export type AnchorAction = 'revoke' | 'renewed' | 'overlong' | 'expired';

/** The API server's clock, not ours, sets expiry: a token at the ceiling may seem to end this much later. */
const clockSkewMs = 5 * 60_000;

export interface AnchorLimits {
  /** How long a token a renewal replaced keeps working once superseded. */
  renewalGraceMs: number;
  /** The longest lifetime the webhook issues now: a token that outlives it (minted before the ceiling) is revoked. */
  maxLifetimeMs: number;
}

const isSameAnchor = (entry: AnchorEntry, anchor: AnchorEntry) => entry.anchor === anchor.anchor && sameServiceAccount(entry, anchor);

/**
 * The anchors, with `supersededAt` set (once) on those of tokens a routine renewal
 * replaced: same ServiceAccount and rotation as `observed`, the anchor of the token the
 * Secret Metacontroller reports holds. Nothing is marked before that Secret is seen.
 */
export function markSuperseded(anchors: AnchorEntry[], returned: string | undefined, observed: AnchorEntry | undefined, now: Date): AnchorEntry[] {
  if (!observed) return anchors;
  return anchors.map((entry) => entry.supersededAt || entry.anchor === returned || isSameAnchor(entry, observed)
    || !sameServiceAccount(entry, observed) || entry.rotation !== observed.rotation
    ? entry
    : { ...entry, supersededAt: rfc3339(now) });
}

/**
 * What to delete: the anchors of tokens issued before a rotation (revoke), once the Secret
 * Metacontroller reports holds the token bound to `observed`; those of tokens a renewal
 * replaced, the grace after they were superseded (renewed); those of tokens that outlive
 * the lifetime ceiling (overlong); and those of tokens that have expired anyway (expired).
 * Never the anchor of `returned`, the token this answer hands out, nor of `observed`.
 * Without either (an answer that keeps the Secret as it is), only what no Secret may hold.
 */
export function anchorsToDelete(anchors: AnchorEntry[], returned: string | undefined, observed: AnchorEntry | undefined,
  limits: AnchorLimits, now: Date): { entry: AnchorEntry; action: AnchorAction }[] {
  const rotatedAway = (entry: AnchorEntry) => observed !== undefined
    && (!sameServiceAccount(entry, observed) || entry.rotation !== observed.rotation);
  return anchors
    .filter((entry) => entry.anchor !== returned && !(observed && isSameAnchor(entry, observed)))
    .flatMap((entry): { entry: AnchorEntry; action: AnchorAction }[] => {
      if (rotatedAway(entry)) return [{ entry, action: 'revoke' }];
      if (Date.parse(entry.expiresAt) <= now.getTime()) return [{ entry, action: 'expired' }];
      if (entry.supersededAt && Date.parse(entry.supersededAt) + limits.renewalGraceMs <= now.getTime()) return [{ entry, action: 'renewed' }];
      if (Date.parse(entry.expiresAt) > now.getTime() + limits.maxLifetimeMs + clockSkewMs) return [{ entry, action: 'overlong' }];
      return [];
    });
}

/**
 * When the next superseded token's grace ends, if one is still ahead. One that has ended
 * already and is still recorded failed to be deleted: the failure's backoff retries it.
 */
export function nextGraceEnd(anchors: AnchorEntry[], graceMs: number, now: Date): Date | undefined {
  const ends = anchors.flatMap((entry) => entry.supersededAt ? [Date.parse(entry.supersededAt) + graceMs] : [])
    .filter((end) => end > now.getTime());
  return ends.length > 0 ? new Date(Math.min(...ends)) : undefined;
}

/**
 * The name of the anchor the next token of request `requestUid` is bound to, while the Secret
 * holds the token bound to `heldAnchor` (undefined: it holds none). A new name once the Secret
 * is seen holding a newer token; the same name for every mint until then.
 */
export function anchorNameFor(serviceAccountName: string, requestUid: string, heldAnchor: string | undefined): string {
  return `${serviceAccountName.slice(0, 40)}-token-${hash('sha256', `${requestUid}/${heldAnchor ?? ''}`, 'hex').slice(0, 10)}`;
}

/**
 * The CRD's maxItems on status.tokenAnchors. The rule above leaves the current token, one
 * unobserved, and the predecessors in their renewal grace or waiting for their revocation: a
 * handful; the rest is room for anchors whose deletion keeps failing.
 */
export const maxRecordedAnchors = 32;

/**
 * The anchors on record with room for one more: the oldest entries of expired tokens dropped
 * first (their tokens no longer work; only an empty anchor Secret may stay behind, removed with
 * its ServiceAccount). Undefined: there is no room without forgetting a live token.
 */
export function roomForAnchor(anchors: AnchorEntry[], now: Date): AnchorEntry[] | undefined {
  const room = withoutExpired(anchors, anchors.length + 1 - maxRecordedAnchors, now);
  return room.length < maxRecordedAnchors ? room : undefined;
}

/**
 * The anchors to write: over maxRecordedAnchors (the status read lacked some the observed
 * Secrets show), the oldest expired entries are dropped; a live one never is.
 */
export function recordable(anchors: AnchorEntry[], now: Date): AnchorEntry[] {
  return withoutExpired(anchors, anchors.length - maxRecordedAnchors, now);
}

function withoutExpired(anchors: AnchorEntry[], excess: number, now: Date): AnchorEntry[] {
  if (excess <= 0) return anchors;
  const dropped = new Set(anchors.filter((entry) => Date.parse(entry.expiresAt) <= now.getTime())
    .sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt)).slice(0, excess));
  return anchors.filter((entry) => !dropped.has(entry));
}
