// Whether the token already in the output Secret can stay, or a new one must be minted.
import { refreshTime } from './schedule.js';
import type { TokenIdentity, TokenRecord } from './token-record.js';

export type TokenDecision =
  | { action: 'keep'; record: TokenRecord }
  | { action: 'mint'; why: string };

const identityChecks: [keyof TokenIdentity, string][] = [
  ['serviceAccount', 'the ServiceAccount changed'],
  ['serviceAccountUid', 'the ServiceAccount was recreated'],
  ['targetCluster', 'the target cluster changed'],
  ['targetClusterUid', 'the DPUCluster was recreated'],
  ['duration', 'the duration changed'],
  ['rotation', 'a rotation was requested'],
];

export function decideToken(existing: TokenRecord | undefined, wanted: TokenIdentity, jitterMs: number, now: Date): TokenDecision {
  if (!existing) return { action: 'mint', why: 'no token yet' };
  for (const [field, why] of identityChecks) {
    if (existing[field] !== wanted[field]) return { action: 'mint', why };
  }
  if (now.getTime() >= refreshTime(existing, jitterMs).getTime()) return { action: 'mint', why: 'the token is due for refresh' };
  return { action: 'keep', record: existing };
}
