// Revocation. Every token is bound to an anchor of its own: a Secret in the ServiceAccount's
// namespace of the target cluster (TokenRequest boundObjectRef). The API server accepts a
// bound token only while its anchor exists, so deleting the anchor revokes the token at
// once. The anchors of the tokens issued and not yet revoked are recorded in the status.
//
// What is revoked, and when: after a rotation (the rotate annotation, another ServiceAccount
// or another cluster) every earlier token, as soon as Metacontroller reports the Secret
// holding the new one, never before, so a rotation causes no outage. A routine renewal
// revokes nothing: Pods that mount the Secret see the renewed token only when the kubelet
// refreshes the volume (about a minute later), and the previous token runs out by itself
// within the last 20% of its lifetime; its anchor is deleted once it has expired.
import { isRecord, type DpuServiceCredentialRequestStatus, type TokenAnchorEntry } from '../api.js';
import { sameServiceAccount } from './service-account-ledger.js';

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
  && ['targetCluster', 'targetClusterUID', 'clusterID'].every((field) => value[field] === undefined || typeof value[field] === 'string');

export function anchorsOf(status: DpuServiceCredentialRequestStatus | undefined): AnchorEntry[] {
  return Array.isArray(status?.tokenAnchors) ? status.tokenAnchors.filter(isAnchorEntry) : [];
}

export function withAnchor(anchors: AnchorEntry[], entry: AnchorEntry): AnchorEntry[] {
  return [...anchors.filter((known) => known.anchor !== entry.anchor || !sameServiceAccount(known, entry)), entry];
}

export type AnchorAction = 'revoke' | 'expired';

/**
 * What to delete: the anchors of tokens issued before a rotation (revoke), once the Secret
 * Metacontroller reports holds the token bound to `observed`; and those of tokens that have
 * expired anyway (expired). Never the anchor of `returned`, the token this answer hands out.
 */
export function anchorsToDelete(anchors: AnchorEntry[], returned: string | undefined, observed: AnchorEntry | undefined,
  now: Date): { entry: AnchorEntry; action: AnchorAction }[] {
  const rotatedAway = (entry: AnchorEntry) => observed !== undefined
    && (!sameServiceAccount(entry, observed) || entry.rotation !== observed.rotation);
  return anchors
    .filter((entry) => entry.anchor !== returned && !(observed && entry.anchor === observed.anchor && sameServiceAccount(entry, observed)))
    .flatMap((entry): { entry: AnchorEntry; action: AnchorAction }[] => {
      if (rotatedAway(entry)) return [{ entry, action: 'revoke' }];
      if (Date.parse(entry.expiresAt) <= now.getTime()) return [{ entry, action: 'expired' }];
      return [];
    });
}
