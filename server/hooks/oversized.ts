// A sync whose body is over MAX_BODY_BYTES: only the parent could be read (Metacontroller sends
// it before the children). The children are unreadable, so nothing in them can be trusted or
// returned; a tenant that pads them (Secrets labelled with its request's controller-uid) must
// not be able to freeze revocation that way. The grants are checked all the same, and the answer
// is a refusal that takes back everything issued, from the status's records alone.
import { oversizedBodyMessage, type OversizedBody } from '../credential/oversized-body.js';
import { failed, reasons } from '../credential/status.js';
import { refusalMessage } from '../credential/tenancy.js';
import type { Deadline } from '../kube/rest.js';
import type { SyncRequest } from '../metacontroller.js';
import { answer } from './answer.js';
import type { HookContext } from './context.js';
import { act, effectsOf } from './effects.js';
import { detailOf } from './error-outcomes.js';
import type { Facts } from './facts.js';
import { firstRefusal, scopesOf } from './grants.js';
import type { SyncOutcome } from './outcome.js';
import { startRun } from './run.js';

/**
 * `HookBodyTooLarge`: every anchor and ServiceAccount on record is deleted, and the answer lists
 * no children, so Metacontroller deletes the padding (and the output Secret, whose token is
 * revoked anyway); the next sync, under the limit, mints again if the grants allow it.
 */
export async function refuseOversized(request: Pick<SyncRequest, 'controller' | 'parent'>, body: OversizedBody, context: HookContext,
  deadline: Deadline): Promise<SyncOutcome> {
  // No children: what the request holds comes from its status alone.
  const run = startRun({ ...request, children: {} }, context, deadline);
  const namespace = run.requestRef.namespace;
  let grantNote: string | undefined;
  try {
    const refusal = await firstRefusal(namespace, scopesOf(run), run.clusters.host, run.policy.protectedNamespaces);
    if (refusal) grantNote = `They do not now: ${refusalMessage(namespace, refusal)}.`;
  } catch (error) {
    // Not knowing changes nothing here: everything is revoked either way.
    grantNote = `The grants could not be checked: ${detailOf(error)}.`;
  }
  const facts: Facts = {
    kind: 'refused',
    refused: failed(reasons.hookBodyTooLarge, oversizedBodyMessage(body, request.parent.metadata?.uid ?? '', grantNote)),
    detail: `body of ${body.bytes} bytes over the limit of ${body.limitBytes}`,
  };
  return answer(run, facts, await act(run, effectsOf(run, facts), context.clusters));
}
