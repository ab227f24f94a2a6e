// The limits on minting that hold whatever status a sync reads (issue 24, point 4). When the
// Secret never shows a token (a write the API server refuses, a Secret Metacontroller never
// adopts), every sync would mint another, each alive for its whole lifetime; and a status
// from Metacontroller's lagging cache may lack the last forced rotation. The anchors in the
// target are the ground truth: the next token's anchor has a fixed name while the Secret holds
// the same token (credential/token-anchors.ts anchorNameFor), so one already there is a token
// minted since and never seen. It is revoked before the next is minted, and the next waits
// out a backoff from its creationTimestamp; a forced rotation waits for the interval after
// the last anchor made for one. Only the mint path pays for this: the create it makes anyway,
// and a read when that name is taken or a forced rotation asks.
import type { ServiceAccountEntry } from '../api.js';
import { namespacedName } from '../credential/names.js';
import { failed, previousFailure, reasons, rfc3339, unobservedMintRetryAt, type ConditionResult, type Reason } from '../credential/status.js';
import { secondsUntil } from '../credential/time.js';
import { stillValid, type TokenDecision } from '../credential/token.js';
import { anchorNameFor, maxRecordedAnchors, roomForAnchor, type AnchorEntry } from '../credential/token-anchors.js';
import type { ValidSpec } from '../credential/validate.js';
import { KubeApiError } from '../kube/rest.js';
import type { Anchor, AnchorState } from '../kube/token-anchors.js';
import type { CallTarget } from './bound-clusters.js';
import { stopped, type Ended } from './facts.js';
import type { SyncRun } from './run.js';

type Kept = Extract<TokenDecision, { action: 'keep' }>;

/** What minting may go on with: the anchor made for the new token, and the record with room for it. */
export type Claim = { anchor: Anchor; anchors: AnchorEntry[] } | { kept: Kept } | Ended;

export interface ClaimInput {
  /** A mint decided on the status as read. */
  decision: Extract<TokenDecision, { action: 'mint' }>;
  /** The anchor of the token the observed Secret holds; undefined: none. */
  heldAnchor: string | undefined;
  serviceAccount: ValidSpec['serviceAccount'] & { uid: string };
  /** The same decision with the last forced rotation at `at`: a keep while the interval holds it back. */
  holdBack: (at: Date) => TokenDecision;
  /** Metacontroller's last write of the Secret was refused (input-checks.ts). */
  refusedWrite: boolean;
  serviceAccountReady: ConditionResult;
  ledger: ServiceAccountEntry[];
  /** Where the target is, for messages. */
  where: string;
}

/** The reasons of an answer whose Secret Metacontroller did not report holding its token. */
const secretNotShown = new Set<string>([reasons.pending, reasons.secretNotAdopted, reasons.secretNotWritten]);

const isAlreadyExists = (error: unknown) => error instanceof KubeApiError && error.statusCode === 409;

/** A forced rotation the anchor made for the last one holds back, if any. */
function heldBack(input: ClaimInput, anchor: AnchorState | undefined): Kept | undefined {
  if (!input.decision.forced || !anchor?.ours || !anchor.forcedRotation) return undefined;
  const decision = input.holdBack(anchor.createdAt);
  return decision.action === 'keep' ? decision : undefined;
}

/**
 * Makes the anchor of the next token, within the limits: no room left on record (maxItems)
 * refuses; a forced rotation the target shows too soon is held back; a token minted since the
 * Secret's and never seen is revoked first, once its backoff has passed.
 */
export async function claimAnchor(run: SyncRun, spec: ValidSpec, target: CallTarget, input: ClaimInput): Promise<Claim> {
  const { namespace } = input.serviceAccount;
  if (input.decision.forced && input.heldAnchor) {
    const kept = heldBack(input, await target.readAnchor(namespace, input.heldAnchor, spec.request));
    if (kept) return { kept };
  }
  const anchors = roomForAnchor(run.holdings.anchors, run.now);
  if (!anchors) {
    const full = failed(reasons.tokenLimitReached, `this request has ${run.holdings.anchors.length} tokens on record that are still valid `
      + `(status.tokenAnchors holds at most ${maxRecordedAnchors}): no further token is minted until some expire or their anchors `
      + `can be deleted (TokenRevocationFailed said why they could not); the current Secret is kept`);
    return stopped({ serviceAccount: input.serviceAccountReady, secret: full, decision: 'error', serviceAccounts: input.ledger, sweep: true });
  }
  const name = anchorNameFor(input.serviceAccount.name, spec.request.uid, input.heldAnchor);
  const options = { name, ...(input.decision.forced ? { forcedRotation: true } : {}) };
  try {
    return { anchor: await target.createAnchor(input.serviceAccount, spec.request, options), anchors };
  } catch (error) {
    if (!isAlreadyExists(error)) throw error;
  }
  const occupant = await target.readAnchor(namespace, name, spec.request);
  if (occupant && !occupant.ours) {
    return stopMint(run.holdings.anchors, input, reasons.tokenRequestFailed, `secret ${namespacedName(namespace, name)} in ${input.where} is not a token `
      + 'anchor of this request, and has the name this request\'s next one needs: delete it');
  }
  if (occupant) {
    const kept = heldBack(input, occupant);
    // Type and labels are all that make it "ours", and whoever may create Secrets there can write both:
    // only an anchor the status records (its UID, from the webhook's own create) holds the token it replaces.
    if (kept && run.holdings.anchors.some((entry) => entry.anchorUID === occupant.uid)) return { kept };
    if (kept) {
      const allowedAt = kept.rotationAllowedAt ? ` before ${rfc3339(kept.rotationAllowedAt)}` : '';
      return stopMint(run.holdings.anchors, input, reasons.tokenRequestFailed, `secret ${namespacedName(namespace, name)} in ${input.where}, made for a `
        + `forced rotation at ${rfc3339(occupant.createdAt)}, is not on this request's record (made by someone else, or minted `
        + `moments ago and not recorded yet): no token is minted${allowedAt}`);
    }
    // Only while the answers fail because the Secret does not show their token: after any other failure (a
    // DPUCluster gone and back, a refusal) or none (a Secret deleted by hand), the token there was handed out.
    // A stale status may skip one wait; the revocation below holds whatever the status says.
    const failure = previousFailure(run.parent.status);
    const retryAt = failure && secretNotShown.has(failure.reason) ? unobservedMintRetryAt(occupant.createdAt, failure.since) : undefined;
    if (retryAt && run.now < retryAt) return waitToMint(run, spec, input, occupant, retryAt);
    await target.revokeAnchor(namespace, occupant);
  }
  return { anchor: await target.createAnchor(input.serviceAccount, spec.request, options), anchors };
}

/**
 * Nothing is minted now, and a forced rotation still revokes the token it replaces (the Secret
 * keeps a token that no longer works, and says so); a renewal keeps it until it expires. For
 * when what stops the mint may be a token's holder: anchor names can be worked out by whoever
 * knows the request's UID and the held token, and a Secret made under the next one (`why`)
 * would otherwise keep alive the token the rotation was forced to end.
 */
function stopMint(onRecord: AnchorEntry[], input: ClaimInput, reason: Reason, why: string): Ended {
  const serviceAccount = namespacedName(input.serviceAccount.namespace, input.serviceAccount.name);
  const heldEntries = input.decision.forced
    ? onRecord.filter((entry) => entry.anchor === input.heldAnchor && entry.serviceAccount === serviceAccount)
    : [];
  return stopped({
    serviceAccount: input.serviceAccountReady, secret: failed(reason, `${why}; the current Secret is kept`), decision: 'error',
    serviceAccounts: input.ledger, sweep: true, ...(heldEntries.length > 0 ? { revokeHeld: { entries: heldEntries, reason, why } } : {}),
  });
}

/** Why the next mint waits: the Secret as it is, and why no token is minted before `retryAt`. */
function waitToMint(run: SyncRun, spec: ValidSpec, input: ClaimInput, unobserved: AnchorState, retryAt: Date): Ended {
  const secretName = namespacedName(spec.secret.namespace, spec.secret.name);
  const current = run.observed.current?.record;
  const still = current && stillValid(current, run.now)
    ? `it still holds the previous token, valid until ${rfc3339(current.expiresAt)}` : 'it holds no token valid for this request';
  const why = input.refusedWrite
    ? `Metacontroller could not write secret ${secretName}: the API server refused it (an admission policy, a ResourceQuota or another `
      + `owner; the SyncError event on this request says which); ${still}`
    : `Metacontroller does not report secret ${secretName} holding the token issued at ${rfc3339(unobserved.createdAt)}; ${still}`;
  const next = `no further token is minted before ${rfc3339(retryAt)}, and that one is revoked first, so that at most one token `
    + 'no Secret shows exists (the wait doubles while this lasts, up to 5 minutes)';
  const todo = input.refusedWrite
    ? 'Lift the block: the token minted then is written'
    : 'Usually a Secret of that name exists that is not this request\'s child: delete it, or run Metacontroller with '
      + '--apply-strategy=server-side-apply, which takes it over';
  const waiting = failed(input.refusedWrite ? reasons.secretNotWritten : reasons.secretNotAdopted, `${why}; ${next}. ${todo}`);
  return stopped({
    serviceAccount: input.serviceAccountReady, secret: waiting, decision: 'error', serviceAccounts: input.ledger, sweep: true,
    retryAfterHint: secondsUntil(retryAt, run.now),
  });
}
