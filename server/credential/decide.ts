// Whether the token already in the output Secret can stay, or a new one must be minted.
import { refreshTime } from './schedule.js';
import type { TokenIdentity, TokenRecord } from './token-record.js';

export type TokenDecision =
  /** `rotationAllowedAt`: a forced rotation was asked for sooner than the minimum interval allows; it happens then. */
  | { action: 'keep'; record: TokenRecord; rotationAllowedAt?: Date }
  | { action: 'mint'; why: string };

export const rotationRequested = 'a rotation was requested';

const identityChecks: [keyof TokenIdentity, string][] = [
  ['serviceAccount', 'the ServiceAccount changed'],
  ['serviceAccountUid', 'the ServiceAccount was recreated'],
  ['targetCluster', 'the target cluster changed'],
  ['targetClusterUid', 'the DPUCluster was recreated'],
  ['duration', 'the duration changed'],
  ['rotation', rotationRequested],
];

/**
 * `rotationAllowedAt`: no forced rotation before then (the last one plus the minimum
 * interval), so that one namespace flipping the rotate annotation cannot spend
 * Metacontroller's shared API budget (every mint writes the Secret and the status twice).
 */
export function decideToken(existing: TokenRecord | undefined, wanted: TokenIdentity, jitterMs: number, now: Date,
  rotationAllowedAt?: Date): TokenDecision {
  if (!existing) return { action: 'mint', why: 'no token yet' };
  const refreshAt = refreshTime(existing, jitterMs);
  for (const [field, why] of identityChecks) {
    if (existing[field] === wanted[field]) continue;
    if (field === 'rotation' && rotationAllowedAt && now < rotationAllowedAt && now < refreshAt) {
      return { action: 'keep', record: existing, rotationAllowedAt };
    }
    return { action: 'mint', why };
  }
  if (now.getTime() >= refreshAt.getTime()) return { action: 'mint', why: 'the token is due for refresh' };
  return { action: 'keep', record: existing };
}
