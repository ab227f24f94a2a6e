// How a failed API call becomes a condition, and what of it goes to the log.
import { CredentialError } from '../credential/errors.js';
import { failed, reasons, type ConditionResult } from '../credential/status.js';
import { TargetClusterNotReadyError } from '../kube/clusters.js';
import { InvalidKubeconfigError } from '../kube/kubeconfig.js';
import { KubeApiError, KubeUnreachableError } from '../kube/rest.js';

export type Step = 'target' | 'serviceAccount' | 'token';

/** Maps a failure to the condition it sets; anything unexpected is a bug and propagates (HTTP 500). */
export function conditionForError(error: unknown, step: Step): ConditionResult {
  if (error instanceof CredentialError) return failed(error.reason, error.message);
  if (error instanceof TargetClusterNotReadyError) return failed(reasons.targetClusterNotReady, error.message);
  if (error instanceof InvalidKubeconfigError) return failed(reasons.invalidTargetKubeconfig, error.message);
  if (error instanceof KubeUnreachableError) {
    return step === 'target'
      ? failed(reasons.hostClusterUnreachable, `${error.message}; retrying`)
      : failed(reasons.targetClusterUnreachable, `${error.message}; the current Secret is kept, retrying`);
  }
  if (error instanceof KubeApiError) {
    const where = step === 'target' ? 'reading the host cluster' : 'in the target cluster';
    const message = `${where}: ${error.message} (HTTP ${error.statusCode}); retrying`;
    if (step === 'token') return failed(reasons.tokenRequestFailed, message);
    if (step === 'serviceAccount') return failed(reasons.serviceAccountReconcileFailed, message);
    return failed(reasons.hostClusterUnreachable, message);
  }
  throw error;
}

export const retryHint = (error: unknown) => (error instanceof KubeApiError ? error.retryAfterSeconds : undefined);
export const detailOf = (error: unknown) => (error instanceof KubeUnreachableError ? `${error.message}: ${error.detail}` : (error as Error).message);
