// The token rule in one place, as the kubelet's token manager (pkg/kubelet/token/token_manager.go)
// keeps its own: what a token is minted for (its identity: keyFunc there), when it is due for
// refresh (requiresRefresh), whether it still works (expired), and whether the token held stays
// or a new one is minted (GetServiceAccountToken's "cached and not due, else request"). Pure: the
// clock is passed in. How the record is read from and written to a Secret is token-record.ts.
import { hash } from 'node:crypto';
import { namespacedName } from './names.js';
import type { ValidSpec } from './validate.js';

/** What a token is minted for: a token held for any other identity is not the one the spec asks for. */
export interface TokenIdentity {
  /** "namespace/name" of the ServiceAccount in the target cluster. */
  serviceAccount: string;
  serviceAccountUid: string;
  /** "namespace/name" of the DPUCluster; '' for the host cluster. */
  targetCluster: string;
  targetClusterUid: string;
  /** The spec's duration text; '' for the API server's default. */
  duration: string;
  rotation: string;
}

export interface TokenLifetime {
  issuedAt: Date;
  expiresAt: Date;
}

export interface TokenRecord extends TokenIdentity, TokenLifetime {
  token: string;
}

/** The identity a spec asks for, once its ServiceAccount (UID) and target cluster (`ref` '' for the host) are known. */
export function tokenIdentityFor(spec: Pick<ValidSpec, 'serviceAccount' | 'expirationSeconds' | 'rotation'>, serviceAccountUid: string,
  target: { ref: string; uid: string }): TokenIdentity {
  return {
    serviceAccount: namespacedName(spec.serviceAccount.namespace, spec.serviceAccount.name),
    serviceAccountUid,
    targetCluster: target.ref,
    targetClusterUid: target.uid,
    // Compared by value: 1h and 60m are the same lifetime.
    duration: spec.expirationSeconds === undefined ? '' : `${spec.expirationSeconds}s`,
    rotation: spec.rotation,
  };
}

/**
 * In the order a change is reported: the ServiceAccount and the cluster before what the request's
 * writer forces, so that a new ServiceAccount that comes with a new rotate value is never held back.
 */
const identityFields: readonly (keyof TokenIdentity)[] = ['serviceAccount', 'serviceAccountUid', 'targetCluster', 'targetClusterUid', 'duration', 'rotation'];

/** The first field in which the identity held differs from the one wanted; undefined: the same identity. */
export function identityChange(held: TokenIdentity, wanted: TokenIdentity): keyof TokenIdentity | undefined {
  return identityFields.find((field) => held[field] !== wanted[field]);
}

export const sameIdentity = (a: TokenIdentity, b: TokenIdentity): boolean => identityChange(a, b) === undefined;

// The refresh rule is the kubelet's token manager's (and DPF's): renew once 80% of the
// lifetime has passed, and at the latest after 24 hours, less a jitter so that many
// requests created together do not all renew in the same second.
export const refreshAfterFraction = 0.8;
export const maxRefreshAfterMs = 24 * 3_600_000;
export const maxJitterMs = 10_000;

/** A jitter in [0, maxJitterMs), fixed per request so that every sync computes the same schedule. */
export function jitterMsFor(requestUid: string): number {
  return hash('sha256', requestUid, 'buffer').readUInt32BE(0) % maxJitterMs;
}

/** When a token of this lifetime is renewed: from its real lifetime (issue to expiry), not the one asked for. */
export function refreshTime(lifetime: TokenLifetime, jitterMs: number): Date {
  const issuedMs = lifetime.issuedAt.getTime();
  const ttlMs = lifetime.expiresAt.getTime() - issuedMs;
  return new Date(Math.min(issuedMs + refreshAfterFraction * ttlMs, issuedMs + maxRefreshAfterMs) - jitterMs);
}

/** The kubelet's requiresRefresh: at or past the refresh time, a new token is minted even for the same identity. */
export const dueForRefresh = (lifetime: TokenLifetime, jitterMs: number, now: Date): boolean =>
  now.getTime() >= refreshTime(lifetime, jitterMs).getTime();

/** The token still authenticates at `now`: a predecessor that does may be kept beside its renewal. */
export const stillValid = (lifetime: TokenLifetime, now: Date): boolean => lifetime.expiresAt > now;

/** Why a token is minted: a fixed phrase (it is logged and becomes the outcome's reason). */
export const mintReasons = {
  noToken: 'no token yet',
  serviceAccount: 'the ServiceAccount changed',
  serviceAccountUid: 'the ServiceAccount was recreated',
  targetCluster: 'the target cluster changed',
  targetClusterUid: 'the DPUCluster was recreated',
  duration: 'the duration changed',
  rotation: 'a rotation was requested',
  refresh: 'the token is due for refresh',
} as const;

export type MintReason = (typeof mintReasons)[keyof typeof mintReasons];

export type TokenDecision =
  /** `rotationAllowedAt`: a forced rotation was asked for sooner than the minimum interval allows; it happens then. */
  | { action: 'keep'; record: TokenRecord; rotationAllowedAt?: Date }
  /** `forced`: caused by a forced rotation (the request's writer), which the minimum interval applies to. */
  | { action: 'mint'; why: MintReason; forced?: true };

/**
 * The changes that a request's writer forces and that leave the current token valid for its
 * ServiceAccount meanwhile. A new ServiceAccount or cluster is never held back: the previous one
 * is deleted once the new one exists, and its token with it.
 */
const throttled = new Set<keyof TokenIdentity>(['duration', 'rotation']);

/**
 * Whether the token held can stay, or a new one must be minted. `rotationAllowedAt`: no forced
 * rotation (a new rotate value, a new duration) before then (the last one plus the minimum
 * interval), so that one namespace flipping either cannot spend Metacontroller's shared API
 * budget (every mint writes the Secret and the status twice).
 */
export function decideToken(held: TokenRecord | undefined, wanted: TokenIdentity, jitterMs: number, now: Date,
  rotationAllowedAt?: Date): TokenDecision {
  if (!held) return { action: 'mint', why: mintReasons.noToken };
  const change = identityChange(held, wanted);
  if (change === undefined) {
    return dueForRefresh(held, jitterMs, now) ? { action: 'mint', why: mintReasons.refresh } : { action: 'keep', record: held };
  }
  if (!throttled.has(change)) return { action: 'mint', why: mintReasons[change] };
  const heldBack = rotationAllowedAt && now < rotationAllowedAt && !dueForRefresh(held, jitterMs, now);
  return heldBack ? { action: 'keep', record: held, rotationAllowedAt } : { action: 'mint', why: mintReasons[change], forced: true };
}
