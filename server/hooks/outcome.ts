// What a hook call comes to: the answer for Metacontroller, and what to count and log about it.
import type { EventNote } from '../credential/events.js';
import type { SyncResponse } from '../metacontroller.js';

/** `behind`: the input predates this webhook's last answer; nothing is answered (HTTP 429, retry). */
export type SyncDecision = 'minted' | 'reused' | 'awaiting' | 'behind' | 'invalid' | 'error' | 'finalized';

export interface SyncOutcome {
  response: SyncResponse;
  decision: SyncDecision;
  /** Why a token was minted, or the failing condition's reason (a fixed word: it labels metrics). */
  reason: string;
  /** What exactly failed, for the log (never a credential). */
  detail?: string;
  /** What to record as Events on the request (never a credential). */
  events?: EventNote[];
}
