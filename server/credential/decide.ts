// Whether the token already in the output Secret can stay, or a new one must be minted.
import { refreshTime } from './schedule.js';
import type { TokenIdentity, TokenRecord } from './token-record.js';

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

const identityChecks: (keyof TokenIdentity)[] = ['serviceAccount', 'serviceAccountUid', 'targetCluster', 'targetClusterUid', 'duration', 'rotation'];

/**
 * `rotationAllowedAt`: no forced rotation (a new rotate value, a new duration) before then (the
 * last one plus the minimum interval), so that one namespace flipping either cannot spend
 * Metacontroller's shared API budget (every mint writes the Secret and the status twice).
 */
export function decideToken(existing: TokenRecord | undefined, wanted: TokenIdentity, jitterMs: number, now: Date,
  rotationAllowedAt?: Date): TokenDecision {
  if (!existing) return { action: 'mint', why: mintReasons.noToken };
  const refreshAt = refreshTime(existing, jitterMs);
  for (const field of identityChecks) {
    if (existing[field] === wanted[field]) continue;
    if (throttled.has(field) && rotationAllowedAt && now < rotationAllowedAt && now < refreshAt) {
      return { action: 'keep', record: existing, rotationAllowedAt };
    }
    return { action: 'mint', why: mintReasons[field], ...(throttled.has(field) ? { forced: true as const } : {}) };
  }
  if (now.getTime() >= refreshAt.getTime()) return { action: 'mint', why: mintReasons.refresh };
  return { action: 'keep', record: existing };
}
