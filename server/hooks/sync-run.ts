// One sync call as the phases see it: the request as observed, this call's clock, policy
// and deadline, and the two ways a phase that cannot go on ends the sync (keeping the Secret).
import type { DpuServiceCredentialRequest } from '../api.js';
import type { Policy } from '../credential/policy.js';
import type { ConditionResult } from '../credential/status.js';
import { anchorsToDelete, type AnchorLimits } from '../credential/token-anchors.js';
import { requestRefOf, type NamespacedName } from '../credential/names.js';
import { validateRequest, type Validation } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import { secretChildKey, type SyncRequest } from '../metacontroller.js';
import { ObservedSecrets, writtenByWebhook } from './children.js';
import type { TargetAccess } from './cluster-access.js';
import { policyOf, type HookContext } from './context.js';
import { errorOutcome, type Phase } from './error-outcomes.js';
import { holdingsOf, type Holdings } from './grants.js';
import { deleteAnchors, tamperingEvents } from './leftovers.js';
import { end, failure, type Ended, type FailureInput } from './outcome.js';

/** What every phase reads: the request as observed, and this call's clock, policy and deadline. */
export interface SyncRun {
  request: SyncRequest;
  parent: DpuServiceCredentialRequest;
  requestRef: NamespacedName;
  observed: ObservedSecrets;
  validation: Validation;
  /** What the request holds: its status's records and the observed Secrets' tokens. */
  holdings: Holdings;
  policy: Policy;
  limits: AnchorLimits;
  now: Date;
  context: HookContext;
  deadline: Deadline;
}

export function startRun(request: SyncRequest, context: HookContext, deadline: Deadline): SyncRun {
  const parent = request.parent;
  const policy = policyOf(context);
  const observed = new ObservedSecrets(writtenByWebhook(Object.values(request.children?.[secretChildKey] ?? {}), parent));
  const holdings = holdingsOf(parent, observed.tokenRecords().map((record) => {
    const { anchor } = observed.issuedToken(record);
    return { record, ...(anchor ? { anchor } : {}) };
  }));
  return {
    request,
    parent,
    requestRef: requestRefOf(parent),
    observed,
    validation: validateRequest(parent),
    holdings,
    policy,
    limits: { renewalGraceMs: policy.renewalGraceMs, maxLifetimeMs: policy.maxTokenDurationSeconds * 1_000 },
    now: context.now(),
    context,
    deadline,
  };
}

/** Why a call failed, as the parts of a failure; a target that refused its credentials is forgotten. */
export function failedCall(run: SyncRun, error: unknown, phase: Phase, target?: TargetAccess, serviceAccountReady?: ConditionResult):
  Pick<FailureInput, 'serviceAccount' | 'secret' | 'decision' | 'retryAfterHint' | 'detail'> {
  const { forgetTarget, ...parts } = errorOutcome(error, phase, serviceAccountReady);
  if (forgetTarget && target) run.context.clusters.forget(target.ref);
  return { ...parts, decision: 'error' };
}

/** What every failure of this run answers from: the request, its observed Secrets (the spec names the current one), the time. */
export function failureBase(run: SyncRun): Pick<FailureInput, 'parent' | 'observed' | 'now' | 'secretName'> {
  const secretName = run.validation.valid ? run.validation.spec.secret.name : undefined;
  return { parent: run.parent, observed: run.observed, now: run.now, ...(secretName ? { secretName } : {}) };
}

type KeptSecretInput = Omit<FailureInput, 'parent' | 'observed' | 'now' | 'tokenAnchors' | 'secretName'>;

/**
 * An answer that keeps the Secret as it is (an invalid spec, a failing cluster) still ends what no
 * Secret may hold any more: tokens past their renewal grace or beyond the lifetime ceiling.
 */
export async function keepSecret(run: SyncRun, input: KeptSecretInput): Promise<Ended> {
  const anchors = run.holdings.anchors;
  const sweep = await deleteAnchors(anchorsToDelete(anchors, undefined, undefined, run.limits, run.now), anchors, undefined,
    run.requestRef, run.context, run.deadline);
  const tampered = tamperingEvents({ tampered: [] }, sweep);
  return end({ ...failure({ ...input, ...failureBase(run), tokenAnchors: sweep.anchors }), ...(tampered.length > 0 ? { events: tampered } : {}) });
}

