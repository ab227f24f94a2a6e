// A sync whose body is over MAX_BODY_BYTES: only the parent could be read (Metacontroller sends
// it before the children). The children are unreadable, so nothing in them can be trusted or
// returned; a tenant that pads them (Secrets labelled with its request's controller-uid) must
// not be able to freeze revocation that way. The grants are checked all the same, and the answer
// is a refusal that takes back everything issued, from the status's records alone.
import { readinessChange } from '../credential/events.js';
import { oversizedBodyMessage, type OversizedBody } from '../credential/oversized-body.js';
import { failed, reasons } from '../credential/status.js';
import { refusalMessage, scopeOfSpec } from '../credential/tenancy.js';
import { validateRequest } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import type { SyncRequest } from '../metacontroller.js';
import type { HookContext } from './context.js';
import { firstRefusal, holdingsOf, revokeEverything, scopesOf } from './grants.js';
import type { SyncOutcome } from './outcome.js';

/**
 * `HookBodyTooLarge`: every anchor and ServiceAccount on record is deleted, and the answer lists
 * no children, so Metacontroller deletes the padding (and the output Secret, whose token is
 * revoked anyway); the next sync, under the limit, mints again if the grants allow it.
 */
export async function refuseOversized(request: Pick<SyncRequest, 'controller' | 'parent'>, body: OversizedBody, context: HookContext,
  deadline: Deadline): Promise<SyncOutcome> {
  const parent = request.parent;
  const namespace = parent.metadata?.namespace ?? '';
  const holdings = holdingsOf(parent, []);
  const validation = validateRequest(parent);
  const scopes = [...scopesOf(namespace, holdings), ...(validation.valid ? [scopeOfSpec(validation.spec)] : [])];
  let grantNote: string | undefined;
  try {
    const refusal = await firstRefusal(namespace, scopes, context, deadline);
    if (refusal) grantNote = `They do not now: ${refusalMessage(namespace, refusal)}.`;
  } catch (error) {
    // Not knowing changes nothing here: everything is revoked either way.
    grantNote = `The grants could not be checked: ${(error as Error).message}.`;
  }
  const refused = failed(reasons.hookBodyTooLarge, oversizedBodyMessage(body, parent.metadata?.uid ?? '', grantNote));
  const outcome = await revokeEverything(parent, refused, holdings, context, deadline, context.now());
  const detail = [`body of ${body.bytes} bytes over the limit of ${body.limitBytes}`, outcome.detail].filter(Boolean).join('; ');
  return { ...outcome, detail, events: [...(outcome.events ?? []), ...readinessChange(parent.status, outcome.response.status)] };
}
