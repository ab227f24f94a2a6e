// The request's status, built from what the sync found. The same inputs give the same
// status byte for byte: a condition's lastTransitionTime moves only when its status
// does, so Metacontroller sees no change and does not loop. How soon a failing request is
// retried is read from the status too (failingSince), so that backoff lives here.
import type { Condition, ConditionStatus, DpuServiceCredentialRequestStatus } from '../api.js';
import { ledgerOf, type ServiceAccountEntry } from './service-account-ledger.js';
import { anchorsOf, recordable, type AnchorEntry } from './token-anchors.js';
import { rfc3339 } from './time.js';
import type { TokenRecord } from './token.js';

export const conditionTypes = {
  serviceAccount: 'ServiceAccountReconciled',
  secret: 'SecretReconciled',
  ready: 'Ready',
} as const;

export const reasons = {
  success: 'Success',
  pending: 'Pending',
  invalidSpec: 'InvalidSpec',
  targetClusterNotFound: 'TargetClusterNotFound',
  targetClusterUnreachable: 'TargetClusterUnreachable',
  serviceAccountConflict: 'ServiceAccountConflict',
  namespaceNotFound: 'NamespaceNotFound',
  tokenRequestFailed: 'TokenRequestFailed',
  tokenRevocationFailed: 'TokenRevocationFailed',
  serviceAccountCleanupFailed: 'ServiceAccountCleanupFailed',
  serviceAccountReconcileFailed: 'ServiceAccountReconcileFailed',
  hostClusterUnreachable: 'HostClusterUnreachable',
  targetClusterNotReady: 'TargetClusterNotReady',
  invalidTargetKubeconfig: 'InvalidTargetKubeconfig',
  secretNotAdopted: 'SecretNotAdopted',
  secretNotWritten: 'SecretNotWritten',
  secretNotWritable: 'SecretNotWritable',
  tokenLimitReached: 'TokenLimitReached',
  referenceNotPermitted: 'ReferenceNotPermitted',
  secretNotOwned: 'SecretNotOwned',
  durationNotPermitted: 'DurationNotPermitted',
  hookBodyTooLarge: 'HookBodyTooLarge',
  /** An anchor of a token to revoke stands relabelled and could not be proven ours (docs/operations.md, After a leak). */
  tamperingDetected: 'TamperingDetected',
} as const;

export type Reason = (typeof reasons)[keyof typeof reasons];

export interface ConditionResult {
  ok: boolean;
  reason: Reason;
  message: string;
}

export const succeeded = (message: string): ConditionResult => ({ ok: true, reason: reasons.success, message });
export const failed = (reason: Reason, message: string): ConditionResult => ({ ok: false, reason, message });

export interface StatusInput {
  previous: DpuServiceCredentialRequestStatus | undefined;
  generation: number;
  serviceAccount: ConditionResult;
  secret: ConditionResult;
  /** Where the ServiceAccount our credentials belong to lives; absent: carried over from `previous`. */
  identity?: { serviceAccount?: string; targetCluster?: string; targetClusterUID?: string };
  /** The anchors of tokens not revoked yet; absent: carried over from `previous`. */
  tokenAnchors?: AnchorEntry[];
  /** Set when this sync revoked the tokens issued before a rotation. */
  revokedAt?: Date;
  /** Set when this sync minted for a forced rotation; absent: carried over from `previous`. */
  forcedRotationAt?: Date;
  /** A forced rotation held back until then (the minimum interval). */
  forcedRotationAllowedAt?: Date;
  /** The ServiceAccounts made and not deleted yet; absent: carried over from `previous`. */
  serviceAccounts?: ServiceAccountEntry[];
  /** "namespace/name" of the Secret returned, and the token it holds; absent: no Secret. */
  secretName?: string;
  token?: Pick<TokenRecord, 'issuedAt' | 'expiresAt'> & { tokenId?: string };
  now: Date;
}

function condition(type: string, result: ConditionResult, input: StatusInput): Condition {
  const status: ConditionStatus = result.ok ? 'True' : 'False';
  const before = input.previous?.conditions?.find((c) => c.type === type);
  return {
    type,
    status,
    observedGeneration: input.generation,
    lastTransitionTime: before?.status === status && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(input.now),
    reason: result.reason,
    message: result.message,
  };
}

export { rfc3339 } from './time.js';

export function buildStatus(input: StatusInput): DpuServiceCredentialRequestStatus {
  const firstFailure = [input.serviceAccount, input.secret].find((result) => !result.ok);
  const ready = firstFailure ?? succeeded('the Secret holds a valid token');
  const identity = input.identity ?? {
    serviceAccount: input.previous?.serviceAccount,
    targetCluster: input.previous?.targetCluster,
    targetClusterUID: input.previous?.targetClusterUID,
  };
  const status: DpuServiceCredentialRequestStatus = {};
  if (identity.serviceAccount) status.serviceAccount = identity.serviceAccount;
  if (identity.targetCluster) status.targetCluster = identity.targetCluster;
  if (identity.targetClusterUID) status.targetClusterUID = identity.targetClusterUID;
  const ledger = input.serviceAccounts ?? ledgerOf(input.previous);
  if (ledger.length > 0) status.serviceAccounts = ledger;
  if (input.secretName) status.secret = input.secretName;
  if (input.token) {
    status.issuedAt = rfc3339(input.token.issuedAt);
    status.expirationTimestamp = rfc3339(input.token.expiresAt);
    if (input.token.tokenId) status.tokenID = input.token.tokenId;
  }
  const anchors = recordable(input.tokenAnchors ?? anchorsOf(input.previous), input.now);
  if (anchors.length > 0) status.tokenAnchors = anchors;
  const revokedAt = input.revokedAt ? rfc3339(input.revokedAt) : input.previous?.previousTokensRevokedAt;
  if (revokedAt) status.previousTokensRevokedAt = revokedAt;
  const forcedRotationAt = input.forcedRotationAt ? rfc3339(input.forcedRotationAt) : input.previous?.lastForcedRotationAt;
  if (forcedRotationAt) status.lastForcedRotationAt = forcedRotationAt;
  if (input.forcedRotationAllowedAt) status.forcedRotationAllowedAt = rfc3339(input.forcedRotationAllowedAt);
  if (!ready.ok) status.failingSince = rfc3339(failingSince(input.previous, ready.reason) ?? input.now);
  status.conditions = [
    condition(conditionTypes.serviceAccount, input.serviceAccount, input),
    condition(conditionTypes.secret, input.secret, input),
    condition(conditionTypes.ready, ready, input),
  ];
  return status;
}

/**
 * Since when the request has been failing for this reason: `status.failingSince`, kept
 * while Ready stays False with the same reason; a new reason starts afresh. (Ready's
 * lastTransitionTime would not do: it stays put when only the reason changes.)
 */
export function failingSince(previous: DpuServiceCredentialRequestStatus | undefined, reason: string): Date | undefined {
  const ready = previous?.conditions?.find((c) => c.type === conditionTypes.ready);
  if (ready?.status !== 'False' || ready.reason !== reason || !previous?.failingSince) return undefined;
  const since = new Date(previous.failingSince);
  return Number.isNaN(since.getTime()) ? undefined : since;
}

// The failure backoff, counted from failingSince above: it needs no state beyond the status itself.
export const minRetryAfterSeconds = 5;
export const maxRetryAfterSeconds = 300;

/**
 * Retry delay for a failing request, from how long it has been failing (failingSince):
 * half the time failed so far, within [5 s, 5 min]. It grows about 1.5x per retry.
 */
export function retryAfterSeconds(failingSince: Date | undefined, now: Date): number {
  const failedForSeconds = failingSince ? Math.max(0, (now.getTime() - failingSince.getTime()) / 1_000) : 0;
  return Math.min(maxRetryAfterSeconds, Math.max(minRetryAfterSeconds, Math.round(failedForSeconds / 2)));
}

/**
 * When a token may be minted again after the one minted at `mintedAt` (its anchor's
 * creationTimestamp in the target) never showed in the Secret, while the request has been
 * failing for that since `failingSince`: the failing request's backoff (retryAfterSeconds)
 * counted from that mint, half the time failed so far at the next mint, within [5 s, 5 min]:
 * now - mintedAt >= clamp((now - since) / 2), that is now >= max(mintedAt + 5 s,
 * min(mintedAt + 5 min, 2 * mintedAt - since)). The gap between mints doubles while the failure
 * lasts. A failure said to begin after that mint (its reason changed since) counts from the mint.
 */
export function unobservedMintRetryAt(mintedAt: Date, failingSince: Date): Date {
  const minted = mintedAt.getTime();
  const since = Math.min(failingSince.getTime(), minted);
  return new Date(Math.max(minted + minRetryAfterSeconds * 1_000, Math.min(minted + maxRetryAfterSeconds * 1_000, 2 * minted - since)));
}

/** The reason Ready was False for in the previous answer, and since when; undefined when it was not False. */
export function previousFailure(previous: DpuServiceCredentialRequestStatus | undefined): { reason: string; since: Date } | undefined {
  const reason = previous?.conditions?.find((c) => c.type === conditionTypes.ready && c.status === 'False')?.reason;
  const since = reason ? failingSince(previous, reason) : undefined;
  return reason && since ? { reason, since } : undefined;
}
