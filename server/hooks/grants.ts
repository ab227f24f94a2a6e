// Tenancy at every sync: what a spec references outside its namespace needs a grant there
// (credential/tenancy.ts); without one nothing is minted, and what was issued is taken back.
import type { DpuServiceCredentialRequest } from '../api.js';
import { retryAfterSeconds } from '../credential/schedule.js';
import { buildStatus, failed, failingSince, reasons } from '../credential/status.js';
import { crossNamespaceReferences, grantVerb, missingGrantMessage, requesterOf, type Reference } from '../credential/tenancy.js';
import { anchorsOf } from '../credential/token-anchors.js';
import type { ValidSpec } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import type { HookContext } from './context.js';
import { deleteAnchors } from './leftovers.js';
import type { SyncOutcome } from './sync.js';

/** The first reference of the spec outside its namespace that no grant allows, if any. */
export async function firstMissingGrant(spec: ValidSpec, context: HookContext, deadline: Deadline): Promise<Reference | undefined> {
  const requester = requesterOf(spec.request.namespace);
  for (const reference of crossNamespaceReferences(spec)) {
    if (!await context.clusters.host.isAllowed(requester, grantVerb, reference, deadline)) return reference;
  }
  return undefined;
}

/**
 * The grant is gone (or never was): nothing is minted, the Secret is dropped, and the
 * tokens issued under the grant are revoked.
 */
export async function referenceRefused(parent: DpuServiceCredentialRequest, spec: ValidSpec, reference: Reference,
  context: HookContext, deadline: Deadline, now: Date): Promise<SyncOutcome> {
  const anchors = anchorsOf(parent.status);
  const revocation = await deleteAnchors(anchors.map((entry) => ({ entry, action: 'revoke' as const })), anchors, undefined, context, deadline);
  const refused = failed(reasons.referenceNotPermitted, missingGrantMessage(spec.request.namespace, reference));
  const status = buildStatus({
    previous: parent.status,
    generation: spec.request.generation,
    serviceAccount: refused,
    secret: refused,
    tokenAnchors: revocation.anchors,
    ...(revocation.revoked ? { revokedAt: now } : {}),
    now,
  });
  return {
    response: { status, children: [], resyncAfterSeconds: retryAfterSeconds(failingSince(parent.status, reasons.referenceNotPermitted), now) },
    decision: 'error',
    reason: reasons.referenceNotPermitted,
    ...(revocation.detail ? { detail: revocation.detail } : {}),
  };
}
