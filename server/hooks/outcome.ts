// What a hook call comes to: the answer for Metacontroller, and what to count and log about
// it; and the reasons an outcome may give. answer.ts builds every one.
import type { EventNote } from '../credential/events.js';
import { failed, reasons, type ConditionResult, type Reason } from '../credential/status.js';
import type { MintReason } from '../credential/token.js';
import type { SyncResponse } from '../metacontroller.js';

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

export const waitingFor = (what: string): ConditionResult => failed(reasons.pending, `waiting for ${what}`);
