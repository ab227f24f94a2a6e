// What Metacontroller reports back: whether the Secret it observed holds the token this
// webhook last issued, and whether the hook's input is older than its own last answer.
//
// Metacontroller hands a sync its children from an informer cache, which can lag behind
// the Secret it has just written. Within `settleWindowMs` of issuing a token, input that
// does not show that token is taken as lag, not as truth: acting on it would mint again
// or, worse, return the older Secret and roll the token back. After the window, what is
// observed is the truth (a Secret deleted by hand, or one Metacontroller never adopted).
import { failed, reasons, succeeded, type ConditionResult } from './status.js';
import { sameIdentity, stillValid, type TokenRecord } from './token.js';

/** Longer than an informer takes to see a write; short enough that a lost Secret is noticed soon. */
export const settleWindowMs = 30_000;

export type InputFreshness =
  /** The input shows our last answer, or that answer is too old to still be in flight. */
  | { state: 'current' }
  /** The observed Secret is older than the token issued last: answering would roll it back. */
  | { state: 'behind'; retryAfterSeconds: number }
  /** No Secret observed yet, though a token was issued moments ago for a Secret never observed so far. */
  | { state: 'awaiting'; retryAfterSeconds: number };

/** A token as status and Secrets identify it: issue times have whole seconds, so the ID tells apart two of the same second. */
export interface IssuedToken {
  issuedAt: Date;
  /** The token's jti claim, when the API server sets one. */
  tokenId?: string;
  /** The anchor Secret the token is bound to, when it is bound. */
  anchor?: string;
  /** That anchor's UID. */
  anchorUid?: string;
}

/**
 * Whether an observed token is the one issued last, or newer. `knownAnchors`: the anchors the
 * status records; every answer records the anchor of the token it mints, so a token bound to
 * an anchor the status does not know was minted after that status was written: the status
 * this sync read is the older input (Metacontroller's parent cache lags too), not the Secret.
 */
export function showsLastIssued(observed: IssuedToken, last: IssuedToken, knownAnchors: ReadonlySet<string>): boolean {
  if (observed.issuedAt > last.issuedAt) return true;
  if (observed.anchor && !knownAnchors.has(observed.anchor)) return true;
  if (last.tokenId && observed.tokenId) return observed.tokenId === last.tokenId;
  return observed.issuedAt.getTime() === last.issuedAt.getTime();
}

/**
 * `secretWasObserved`: the previous answer saw the Secret holding a valid token. A Secret
 * missing after that was deleted (mint again at once); one never seen yet may still be on
 * its way.
 */
export function inputFreshness(lastIssued: IssuedToken | undefined, observed: IssuedToken[], knownAnchors: ReadonlySet<string>,
  secretWasObserved: boolean, now: Date): InputFreshness {
  if (!lastIssued) return { state: 'current' };
  const settledMs = lastIssued.issuedAt.getTime() + settleWindowMs - now.getTime();
  if (settledMs <= 0 || observed.some((token) => showsLastIssued(token, lastIssued, knownAnchors))) return { state: 'current' };
  const retryAfterSeconds = Math.max(1, Math.ceil(settledMs / 1_000));
  if (observed.length > 0) return { state: 'behind', retryAfterSeconds };
  return secretWasObserved ? { state: 'current' } : { state: 'awaiting', retryAfterSeconds };
}

export interface WrittenCheck {
  /** The token the status records as issued last. */
  lastIssued: IssuedToken;
  knownAnchors: ReadonlySet<string>;
  /** The child of the name the status records, as observed (undefined: none), and the token it holds. */
  observed: { token?: IssuedToken } | undefined;
  /** The same Secret read from the API server just now (undefined: there is none); `ours`: a child of this request. */
  live: { token?: IssuedToken; ours: boolean } | undefined;
  /** The previous answer saw that Secret holding a valid token. */
  secretWasObserved: boolean;
}

/**
 * Whether Metacontroller's last write of the Secret was refused. It writes an answer's status
 * after its children and even when writing them failed (composite/controller.go
 * syncParentObject): a status visible here means the write of that answer's Secret is over.
 * If the Secret, read live, still lacks the token that status records, the API server refused
 * it (an admission policy, a ResourceQuota, another owner); no cache can be behind a live read.
 * A Secret that held the token and is gone now was deleted, not refused: minted again at once.
 * One that is not this request's child was not adopted (dynamic-apply swallows AlreadyExists):
 * SecretNotAdopted and SecretNotOwned say what to do about that.
 */
export function writeRefused(check: WrittenCheck): boolean {
  const holds = (secret: { token?: IssuedToken } | undefined) =>
    secret?.token !== undefined && showsLastIssued(secret.token, check.lastIssued, check.knownAnchors);
  if (holds(check.observed) || holds(check.live) || check.live?.ours === false) return false;
  return check.observed !== undefined || check.live !== undefined || !check.secretWasObserved;
}

export interface SecretObservation {
  /** "namespace/name" of the Secret the spec asks for. */
  secretName: string;
  /** The token record of the child observed under that name, if any. */
  observed: TokenRecord | undefined;
  /** The token returned in this answer. */
  returned: TokenRecord;
  /** Why the previous answer's Ready was False, and since when (status.failingSince). */
  previousFailure: { reason: string; since: Date } | undefined;
  /** Metacontroller's last write of this Secret was refused (writeRefused). */
  writeRefused?: boolean;
  now: Date;
}

/**
 * SecretReconciled: True only when the observed Secret holds a token that is valid for
 * the current spec: the one returned, or (during a renewal) its still valid predecessor.
 */
export function observedSecretResult(input: SecretObservation): ConditionResult {
  const { observed, returned, secretName, now } = input;
  const until = (record: TokenRecord) => record.expiresAt.toISOString();
  if (observed?.token === returned.token) return succeeded(`secret ${secretName} holds a token valid until ${until(returned)}`);
  // A predecessor of the token returned: minted for the same spec, and it still works.
  const predecessor = observed && sameIdentity(observed, returned) && stillValid(observed, now) ? observed : undefined;
  if (input.writeRefused) {
    // Before the renewal branch: a refused renewal is not "being written", and says so while the old token still works.
    const still = predecessor ? `it still holds the previous token, valid until ${until(predecessor)}` : 'it holds no token valid for this request';
    return failed(reasons.secretNotWritten,
      `Metacontroller could not write secret ${secretName}: the API server refused it (an admission policy, a ResourceQuota or `
      + `another owner; the SyncError event on this request says which); ${still}. Lift the block: the next retry writes it`);
  }
  if (predecessor) {
    return succeeded(`secret ${secretName} holds a token valid until ${until(predecessor)}; its renewal (valid until ${until(returned)}) is being written`);
  }
  const waiting = input.previousFailure;
  const waitedMs = waiting && (waiting.reason === reasons.pending || waiting.reason === reasons.secretNotAdopted)
    ? now.getTime() - waiting.since.getTime() : 0;
  if (waiting?.reason === reasons.secretNotAdopted || waitedMs >= settleWindowMs) {
    return failed(reasons.secretNotAdopted,
      `Metacontroller does not report secret ${secretName} holding a current token. `
      + `Usually a Secret of that name exists that is not this request's child (left by DPF's controller, or a name clash): `
      + `delete it, or run Metacontroller with --apply-strategy=server-side-apply, which takes it over`);
  }
  return failed(reasons.pending, `waiting for Metacontroller to write secret ${secretName} with the token issued at ${returned.issuedAt.toISOString()}`);
}
