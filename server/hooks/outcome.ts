// What a hook call comes to: the answer for Metacontroller, and what to count and log about
// it; the reasons an outcome may give; and the builders of the answers that end a sync early.
import type { DpuServiceCredentialRequest, ServiceAccountEntry } from '../api.js';
import type { EventNote } from '../credential/events.js';
import { namespacedName } from '../credential/names.js';
import {
  buildStatus, failed, failingSince, reasons, retryAfterSeconds, type ConditionResult, type Reason, type StatusInput,
} from '../credential/status.js';
import type { AnchorEntry } from '../credential/token-anchors.js';
import type { MintReason } from '../credential/token.js';
import type { SyncResponse } from '../metacontroller.js';
import { unchanged, type ObservedSecrets } from './children.js';

/** `behind`: the input predates this webhook's last answer; nothing is answered (HTTP 429, retry). */
export type SyncDecision = 'minted' | 'reused' | 'awaiting' | 'behind' | 'invalid' | 'error' | 'finalized';

/**
 * The reasons of outcomes that set no condition. Their values are logged, and those of failed
 * finalize calls label `dpu_credential_hook_errors_total`: keep them as they are.
 */
export const outcomeReasons = {
  tokenStillFresh: 'token still fresh',
  behind: 'the observed Secret predates the token issued last',
  noServiceAccount: 'NoServiceAccount',
  serviceAccountDeleted: 'ServiceAccountDeleted',
  nothingLeftToDelete: 'NothingLeftToDelete',
  gaveUpOnServiceAccount: 'GaveUpOnServiceAccount',
  serviceAccountDeleteFailed: 'ServiceAccountDeleteFailed',
} as const;

/** Every reason an outcome may give: a condition's, why a token was minted, or one of outcomeReasons. */
export type OutcomeReason = Reason | MintReason | (typeof outcomeReasons)[keyof typeof outcomeReasons];

export interface SyncOutcome {
  response: SyncResponse;
  decision: SyncDecision;
  /** Why a token was minted, or the failing condition's reason (a fixed word: it labels metrics). */
  reason: OutcomeReason;
  /** What exactly failed, for the log (never a credential). */
  detail?: string;
  /** What to record as Events on the request (never a credential). */
  events?: EventNote[];
}

/** A phase of the sync that ends it: the outcome to answer with. */
export interface Ended {
  readonly ended: SyncOutcome;
}

export const end = (outcome: SyncOutcome): Ended => ({ ended: outcome });

/** Whether a phase ended the sync (a phase's own result never has an `ended` field). */
export const hasEnded = <T extends object>(result: T | Ended): result is Ended => 'ended' in result;

export const waitingFor = (what: string): ConditionResult => failed(reasons.pending, `waiting for ${what}`);

export interface FailureInput {
  parent: DpuServiceCredentialRequest;
  observed: ObservedSecrets;
  /** The spec's secret.name; absent when the spec is invalid. */
  secretName?: string;
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
export function failure(input: FailureInput): SyncOutcome {
  const previous = input.parent.status;
  const children = input.dropSecret ? [] : unchanged(input.observed.all);
  const held = input.dropSecret ? undefined : input.observed.lineage(input.secretName).held;
  const heldRecord = input.observed.recordOf(held);
  const status = buildStatus({
    previous,
    generation: input.parent.metadata?.generation ?? 0,
    serviceAccount: input.serviceAccount,
    secret: input.secret,
    identity: input.identity,
    ...(input.serviceAccounts ? { serviceAccounts: input.serviceAccounts } : {}),
    ...(input.tokenAnchors ? { tokenAnchors: input.tokenAnchors } : {}),
    ...(held?.metadata?.name ? { secretName: namespacedName(held.metadata.namespace ?? '', held.metadata.name) } : {}),
    ...(heldRecord ? { token: input.observed.issuedToken(heldRecord) } : {}),
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
