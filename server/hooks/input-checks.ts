// The checks before anything is issued: that the input is not older than this webhook's last
// answer (Metacontroller's caches lag; observed-secret.ts decides), that the spec is valid and
// within the policy, and that the Secret it names is this request's to write. Each ends the
// sync with what it found, never with an answer.
import { isRecord, type DpuServiceCredentialRequestStatus, type SecretObject } from '../api.js';
import { adoptAnnotation, namespacedName, parseNamespacedName } from '../credential/names.js';
import { inputFreshness, showsLastIssued, writeRefused, type IssuedToken } from '../credential/observed-secret.js';
import { outputSecretType } from '../credential/render.js';
import { conditionTypes, failed, reasons } from '../credential/status.js';
import { dateOf, readTokenRecord } from '../credential/token-record.js';
import { anchorsOf } from '../credential/token-anchors.js';
import type { ValidSpec } from '../credential/validate.js';
import { issuedToken } from './children.js';
import { failedCall, stopped, type Ended, type Freshness } from './facts.js';
import type { SyncRun } from './run.js';

/** The token this webhook issued last, as the status recorded it. */
function lastIssued(status: DpuServiceCredentialRequestStatus | undefined): IssuedToken | undefined {
  const issuedAt = dateOf(status?.issuedAt);
  return issuedAt ? { issuedAt, ...(status?.tokenID ? { tokenId: status.tokenID } : {}) } : undefined;
}

/** Nothing after this may act on children older than this webhook's last answer (see observed-secret.ts). */
export async function checkInputFreshness(run: SyncRun): Promise<Freshness | Ended> {
  const { parent, now } = run;
  const secretWasObserved = parent.status?.conditions?.some((c) => c.type === conditionTypes.secret && c.status === 'True') ?? false;
  const knownAnchors = new Set(anchorsOf(parent.status).map((entry) => entry.anchor));
  const last = lastIssued(parent.status);
  const freshness = inputFreshness(last, run.observed.withTokens.map((child) => child.token), knownAnchors, secretWasObserved, now);
  // A refused write is no lag: waiting for it would end in a 429 loop or a Secret never written.
  const refusedWrite = last && await refusedSecretWrite(run, last, knownAnchors, secretWasObserved);
  if (refusedWrite) return { refusedWrite };
  if (freshness.state === 'current') return {};
  return { ended: { kind: freshness.state, retryAfterSeconds: freshness.retryAfterSeconds } };
}

/** Whether `secret` is the child of the request with UID `requestUid` (its controller reference), observed or not yet. */
const isControlledBy = (secret: SecretObject | undefined, requestUid: string | undefined) =>
  (secret?.metadata?.ownerReferences ?? []).some((owner) => isRecord(owner) && owner.controller === true && owner.uid === requestUid);

/**
 * The Secret ("namespace/name") the status records whose last write Metacontroller could not
 * make (see writeRefused), if any. It is read live only when its observed child does not show
 * the token issued last: after a mint, before the cache has it, or after a refused write.
 */
async function refusedSecretWrite(run: SyncRun, last: IssuedToken, knownAnchors: ReadonlySet<string>, secretWasObserved: boolean): Promise<string | undefined> {
  const { parent, observed } = run;
  const recorded = parent.status?.secret;
  if (!recorded) return undefined;
  const { namespace, name } = parseNamespacedName(recorded);
  const child = observed.byName.get(name);
  const seen = child ? (child.token ? { token: child.token } : {}) : undefined;
  if (seen?.token && showsLastIssued(seen.token, last, knownAnchors)) return undefined;
  let live: SecretObject | undefined;
  try {
    live = await run.clusters.host.readSecret(namespace, name);
  } catch {
    // Not knowing is not a refusal: the cache-lag rules decide as they did before.
    return undefined;
  }
  const liveRecord = readTokenRecord(live);
  const liveSeen = live ? { ours: isControlledBy(live, parent.metadata?.uid), ...(liveRecord ? { token: issuedToken(liveRecord) } : {}) } : undefined;
  return writeRefused({ lastIssued: last, knownAnchors, observed: seen, live: liveSeen, secretWasObserved }) ? recorded : undefined;
}

/** Whether the request may write `secret`: its own child, or a Secret whose editor consented (adoptAnnotation). */
function mayWrite(secret: SecretObject, request: ValidSpec['request']): boolean {
  return secret.metadata?.annotations?.[adoptAnnotation] === request.name || isControlledBy(secret, request.uid);
}

/**
 * Why `secret` can never hold what this webhook writes, if so: an immutable Secret keeps its
 * data, and a Secret's type cannot change. Each answer would mint a token it never shows.
 */
function unwritable(secret: SecretObject): string | undefined {
  if (secret.immutable === true) return 'it is immutable (its data can never change)';
  const type = secret.type ?? outputSecretType;
  return type === outputSecretType ? undefined : `it is of type ${type}, and an output Secret is ${outputSecretType} (a Secret's type never changes)`;
}

function notWritable(spec: ValidSpec, why: string): Ended {
  const refused = failed(reasons.secretNotWritable, `secret ${namespacedName(spec.secret.namespace, spec.secret.name)} cannot be written: ${why}; `
    + `nothing was minted and nothing in it is changed. Delete it (this request then writes a new one), or choose another spec.secret.name`);
  return stopped({ serviceAccount: refused, secret: refused, decision: 'error', sweep: true });
}

/**
 * Metacontroller applies children by force under server-side apply: a Secret of that name
 * that is not this request's own would be taken over. Its children are observed; one just
 * written may not be yet, so what is not observed is read live. Undefined: it may be written.
 * One that can never be written (unwritable) is refused before anything is minted for it.
 */
async function checkSecretOwnership(run: SyncRun, spec: ValidSpec): Promise<Ended | undefined> {
  const child = run.observed.current?.secret;
  if (child) {
    const why = unwritable(child);
    return why ? notWritable(spec, why) : undefined;
  }
  let existing: SecretObject | undefined;
  try {
    existing = await run.clusters.host.readSecretMetadata(spec.secret.namespace, spec.secret.name);
    // Handed over (the adopt annotation): its type and immutability decide whether it can be written, and
    // only a full read has them. Its data is not looked at.
    if (existing && !isControlledBy(existing, spec.request.uid) && mayWrite(existing, spec.request)) {
      existing = await run.clusters.host.readSecret(spec.secret.namespace, spec.secret.name);
      const why = existing && unwritable(existing);
      if (why) return notWritable(spec, why);
    }
  } catch (error) {
    return failedCall({ error, phase: 'secretOwnership', sweep: true });
  }
  if (!existing || mayWrite(existing, spec.request)) return undefined;
  const taken = failed(reasons.secretNotOwned, `secret ${namespacedName(spec.secret.namespace, spec.secret.name)} exists and is not `
    + `this request's: nothing in it is changed. Choose another spec.secret.name, delete that Secret, or let this request take it over: `
    + `kubectl -n ${spec.secret.namespace} annotate secret ${spec.secret.name} ${adoptAnnotation}=${spec.request.name}`);
  return stopped({ serviceAccount: taken, secret: taken, decision: 'error', sweep: true });
}

/** The spec, valid, within the policy, and naming a Secret this request may write. */
export async function checkSpec(run: SyncRun): Promise<ValidSpec | Ended> {
  if (!run.validation.valid) {
    const invalid = failed(reasons.invalidSpec, `the request is invalid: ${run.validation.problems.join('; ')}`);
    return stopped({ serviceAccount: invalid, secret: invalid, decision: 'invalid', sweep: true });
  }
  const spec = run.validation.spec;
  const maxSeconds = run.policy.maxTokenDurationSeconds;
  if (spec.expirationSeconds !== undefined && spec.expirationSeconds > maxSeconds) {
    const tooLong = failed(reasons.durationNotPermitted, `spec.duration: ${spec.expirationSeconds}s is longer than this webhook issues `
      + `(MAX_TOKEN_DURATION: ${maxSeconds}s); nothing was minted, the current Secret is kept`);
    return stopped({ serviceAccount: tooLong, secret: tooLong, decision: 'invalid', sweep: true });
  }
  return (await checkSecretOwnership(run, spec)) ?? spec;
}
