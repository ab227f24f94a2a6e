// What the phases of a sync find, as data: why the sync stops, or what it issued. Nothing
// here is an answer and nothing here calls a cluster: effects.ts derives from these facts
// what to delete and forget, and answer.ts builds every answer from them and what that did.
import type { ServiceAccountEntry } from '../api.js';
import type { EventNote } from '../credential/events.js';
import type { ConditionResult, Reason } from '../credential/status.js';
import type { AnchorAction, AnchorEntry } from '../credential/token-anchors.js';
import type { TokenDecision, TokenIdentity, TokenRecord } from '../credential/token.js';
import type { ValidSpec } from '../credential/validate.js';
import type { CallTarget } from './bound-clusters.js';
import type { HeldToken } from './children.js';
import type { SyncDecision } from './outcome.js';

/** Why a sync stops before it issues anything. The Secret is kept as it is, unless `dropSecret`. */
export interface Stop {
  serviceAccount: ConditionResult;
  secret: ConditionResult;
  decision: Extract<SyncDecision, 'invalid' | 'error'>;
  retryAfterHint?: number;
  /** What exactly failed, for the log (never a credential). */
  detail?: string;
  /** The Secret goes: the cluster its token was minted for is gone. */
  dropSecret?: boolean;
  /** The ServiceAccounts on record, where the phase that stopped knows them better than the status. */
  serviceAccounts?: ServiceAccountEntry[];
  /** The anchors on record, where the phase that stopped knows them better than the status. */
  tokenAnchors?: AnchorEntry[];
  /**
   * Whether tokens no Secret may hold any more (past their renewal grace, beyond the lifetime
   * ceiling) are ended: by every stop but a failed grant check and a failed mint, which leave
   * the record as it was for the retry.
   */
  sweep: boolean;
  /**
   * A forced rotation that cannot mint: the anchors of the token it was forced to end, revoked all
   * the same. `why` nothing was minted; the Secret's condition (`reason`) says whether that token
   * is revoked once the effects ran (`secret` says what holds before).
   */
  revokeHeld?: { entries: AnchorEntry[]; reason: Reason; why: string };
  /** A DPUCluster whose cached client goes: gone, or its credentials refused. */
  forget?: string;
}

/** The phases of a sync that call an API server: what a failure means depends on which (error-outcomes.ts). */
export type Phase = 'grants' | 'secretOwnership' | 'target' | 'serviceAccount' | 'token';

/** A call that failed, before the error table (error-outcomes.ts) says what it means. */
export interface FailedCall {
  error: unknown;
  phase: Phase;
  target?: CallTarget;
  /** The ServiceAccount's condition, for the phases after it exists. */
  serviceAccountReady?: ConditionResult;
  /** What the stop records beside the failure. */
  record?: Pick<Stop, 'serviceAccounts' | 'tokenAnchors'>;
  /** Whether it ends tokens past their grace (Stop.sweep). */
  sweep: boolean;
}

/** The ServiceAccount as ensured: what the token is minted for, and where it is recorded. */
export interface EnsuredAccount {
  /** "namespace/name". */
  ref: string;
  /** The ledger entry, recorded before anything is minted for it: a spec that changes again cannot leave it behind. */
  current: ServiceAccountEntry;
  ledger: ServiceAccountEntry[];
  identity: TokenIdentity;
  ready: ConditionResult;
  /** Where it lives, for messages. */
  where: string;
  events: EventNote[];
}

/** The token the Secret will hold: the one it holds, or a new one. */
export interface HeldOrMinted {
  decision: TokenDecision;
  record: TokenRecord;
  /** The request's jitter on the refresh point (hashed once per sync). */
  jitterMs: number;
  /** The anchors on record, the new token's included. */
  anchors: AnchorEntry[];
  events: EventNote[];
}

/** The input is current enough to act on; `refusedWrite`: the Secret ("namespace/name") whose last write Metacontroller could not make. */
export interface Freshness {
  refusedWrite?: string;
}

/** A credential issued (or kept), and what it replaced: what the answer reports and the effects take back. */
export interface Issued {
  spec: ValidSpec;
  target: CallTarget;
  account: EnsuredAccount;
  token: HeldOrMinted;
  freshness: Freshness;
  /** The token handed out, and the Secret under the spec's name as observed. */
  returned: HeldToken;
  observedRecord: TokenRecord | undefined;
  /** The anchors on record, the replaced ones marked; and which of them to delete now. */
  anchors: AnchorEntry[];
  replaced: { entry: AnchorEntry; action: AnchorAction }[];
}

/** What the phases of one sync found: one of these, whichever phase ended it. */
export type Facts =
  /** A scope without its grant (or a body too large to trust): everything issued is taken back. */
  | { kind: 'refused'; refused: ConditionResult; detail?: string }
  /** The input predates this webhook's last answer: nothing is answered (HTTP 429, retry). */
  | { kind: 'behind'; retryAfterSeconds: number }
  /** A token was issued moments ago and Metacontroller does not show its Secret yet. */
  | { kind: 'awaiting'; retryAfterSeconds: number }
  | { kind: 'stopped'; stop: Stop }
  | { kind: 'issued'; issued: Issued };

/** A phase's result that ends the sync: the facts it ends on, or the call that failed (read into a Stop once, by the error table). */
export interface Ended {
  readonly ended: Exclude<Facts, { kind: 'issued' }> | { kind: 'failedCall'; call: FailedCall };
}

export const stopped = (stop: Stop): Ended => ({ ended: { kind: 'stopped', stop } });
export const failedCall = (call: FailedCall): Ended => ({ ended: { kind: 'failedCall', call } });

/** Whether a phase ended the sync (a phase's own result never has an `ended` field). */
export const hasEnded = <T extends object>(result: T | Ended): result is Ended => 'ended' in result;
