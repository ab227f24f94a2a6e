// Every failed call of a hook, as one table: the kind of error × the phase it ended →
// the condition it sets (reason, message), the other condition meanwhile, whether to
// forget the target's credentials, and the retry hint. Anything not in the table is a bug
// and propagates (HTTP 500).
import { adoptionConsentFor, adoptServiceAccountAnnotation } from '../credential/service-account-claim.js';
import { failed, reasons, type ConditionResult, type Reason } from '../credential/status.js';
import { TargetClusterNotReadyError } from '../kube/clusters.js';
import { InvalidKubeconfigError } from '../kube/kubeconfig.js';
import { KubeApiError, KubeUnreachableError } from '../kube/rest.js';
import { NamespaceMissingError, ServiceAccountInUseError } from '../kube/service-accounts.js';
import type { FailedCall, Phase, Stop } from './facts.js';
import { waitingFor } from './outcome.js';

/** The token was minted for another ServiceAccount of that name (recreated meanwhile): it was thrown away. */
export class ServiceAccountReplacedError extends Error {
  override name = 'ServiceAccountReplacedError';
  constructor(readonly serviceAccount: string) {
    super(`service account ${serviceAccount} was replaced while its token was minted`);
  }
}

interface PhaseRow {
  /** Which cluster its calls go to: the host (grant checks, reads) or the target. */
  cluster: 'host' | 'target';
  /** The condition the failure sets; the other one says what it waits for (`waitingFor`). */
  failing: 'serviceAccount' | 'secret';
  waitingFor?: string;
  /** The reason of an error answer from the target. */
  apiReason?: Reason;
}

const phases: Record<Phase, PhaseRow> = {
  grants: { cluster: 'host', failing: 'serviceAccount', waitingFor: 'the grant check' },
  secretOwnership: { cluster: 'host', failing: 'secret', waitingFor: 'the host cluster' },
  target: { cluster: 'host', failing: 'serviceAccount', waitingFor: 'the target cluster' },
  serviceAccount: { cluster: 'target', failing: 'serviceAccount', waitingFor: 'the ServiceAccount', apiReason: reasons.serviceAccountReconcileFailed },
  // The ServiceAccount exists by then: its condition is the caller's success.
  token: { cluster: 'target', failing: 'secret', apiReason: reasons.tokenRequestFailed },
};

/** The kinds of error the hooks expect; undefined: a bug. */
function conditionOf(error: unknown, row: PhaseRow): ConditionResult | undefined {
  if (error instanceof NamespaceMissingError) return failed(reasons.namespaceNotFound, namespaceMissingMessage(error));
  if (error instanceof ServiceAccountInUseError) return failed(reasons.serviceAccountConflict, serviceAccountInUseMessage(error));
  if (error instanceof ServiceAccountReplacedError) return failed(reasons.serviceAccountConflict, `${error.message}; the token was discarded, retrying`);
  if (error instanceof TargetClusterNotReadyError) return failed(reasons.targetClusterNotReady, error.message);
  if (error instanceof InvalidKubeconfigError) return failed(reasons.invalidTargetKubeconfig, error.message);
  if (error instanceof KubeUnreachableError) {
    return row.cluster === 'host'
      ? failed(reasons.hostClusterUnreachable, `${error.message}; retrying`)
      : failed(reasons.targetClusterUnreachable, `${error.message}; the current Secret is kept, retrying`);
  }
  if (error instanceof KubeApiError) {
    const where = row.cluster === 'host' ? 'reading the host cluster' : 'in the target cluster';
    return failed(row.apiReason ?? reasons.hostClusterUnreachable, `${where}: ${error.message} (HTTP ${error.statusCode}); retrying`);
  }
  return undefined;
}

/** Says what an omitted namespace means here, since DPF's controller read it differently (docs/migrating.md). */
function namespaceMissingMessage({ account, request }: NamespaceMissingError): string {
  const message = `namespace ${account.namespace} does not exist in the target cluster; create it there (it is never created for you)`;
  if (account.namespace !== request.namespace) return message;
  return `${message}. An omitted spec.serviceAccount.namespace means the request's namespace (${request.namespace}), as DPF's API documents; `
    + 'DPF\'s controller used "default": set spec.serviceAccount.namespace: default to keep that (see docs/migrating.md)';
}

export interface ErrorOutcome {
  serviceAccount: ConditionResult;
  secret: ConditionResult;
  /** The server's Retry-After, if it gave one. */
  retryAfterHint?: number;
  /** For the log (never a credential). */
  detail: string;
  /** The target refused its admin credentials (401): its kubeconfig Secret is read again next time. */
  forgetTarget: boolean;
}

/**
 * The outcome of `error` ending `phase`. `serviceAccountReady` is the ServiceAccount's condition
 * for the phases after it exists. Throws `error` itself when it is not one the table knows.
 */
export function errorOutcome(error: unknown, phase: Phase, serviceAccountReady?: ConditionResult): ErrorOutcome {
  const row = phases[phase];
  const problem = conditionOf(error, row);
  if (!problem) throw error;
  const other = row.waitingFor ? waitingFor(row.waitingFor) : serviceAccountReady ?? waitingFor('the ServiceAccount');
  const retryAfterHint = error instanceof KubeApiError ? error.retryAfterSeconds : undefined;
  return {
    serviceAccount: row.failing === 'serviceAccount' ? problem : other,
    secret: row.failing === 'secret' ? problem : other,
    ...(retryAfterHint !== undefined ? { retryAfterHint } : {}),
    detail: detailOf(error),
    forgetTarget: row.cluster === 'target' && error instanceof KubeApiError && error.statusCode === 401,
  };
}

/** A failed call of a sync phase as the stop it comes to; a target that refused its credentials (401) is forgotten. */
export function stopOf({ error, phase, target, serviceAccountReady, record, sweep }: FailedCall): Stop {
  const { forgetTarget, ...parts } = errorOutcome(error, phase, serviceAccountReady);
  return { ...parts, ...record, decision: 'error', sweep, ...(forgetTarget && target ? { forget: target.ref } : {}) };
}

/** How a failed deletion in finalize is answered: retried, or given up on once the cluster cannot be used at all. */
export interface FinalizeFailure {
  detail: string;
  /** The cluster cannot be used (no kubeconfig, a broken one): waiting may never end. One that is down is waited for. */
  clusterUnusable: boolean;
}

/** Finalize's row of the table: only API and cluster errors are expected; anything else is a bug and propagates. */
export function finalizeFailure(error: unknown): FinalizeFailure {
  const clusterUnusable = error instanceof TargetClusterNotReadyError || error instanceof InvalidKubeconfigError;
  if (!clusterUnusable && !(error instanceof KubeUnreachableError || error instanceof KubeApiError)) throw error;
  return { detail: detailOf(error), clusterUnusable };
}

/** What failed, for the log: the unreachable server's cause too. */
export const detailOf = (error: unknown): string =>
  (error instanceof KubeUnreachableError ? `${error.message}: ${error.detail}` : error instanceof Error ? error.message : String(error));

/** Why a ServiceAccount is not this request's, and, for a label-less one, how its editor hands it over. */
function serviceAccountInUseMessage(error: ServiceAccountInUseError): string {
  const { account, why, request } = error;
  const ref = `${account.namespace}/${account.name}`;
  if (why === 'labelledForAnother') return `service account ${ref} is already in use (it was created for another request); choose another name`;
  if (why === 'labelsRefused') {
    return `service account ${ref} was handed to this request, but the cluster refused the webhook its managed labels `
      + '(in the host cluster: apply this release\'s RBAC and webhook-identity.yaml); retrying';
  }
  const handOver = request
    ? `; to hand it to this request, whoever may edit it annotates it: kubectl -n ${account.namespace} annotate serviceaccount `
      + `${account.name} ${adoptServiceAccountAnnotation}=${adoptionConsentFor(request)}`
    : '';
  const consent = why === 'consentForAnother' ? `; its ${adoptServiceAccountAnnotation} annotation names another request` : '';
  return `service account ${ref} is already in use (it was not created for this request)${consent}; choose another name${handOver}`;
}
