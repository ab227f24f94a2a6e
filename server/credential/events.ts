// The Events a sync is worth recording on the request: what a person running `kubectl
// describe` wants to see. Never a token, a kubeconfig or a Secret's data: only names, times
// and reasons.
import type { DpuServiceCredentialRequestStatus } from '../api.js';
import { conditionTypes, reasons } from './status.js';

export interface EventNote {
  type: 'Normal' | 'Warning';
  /** CamelCase, as Kubernetes events have it. */
  reason: string;
  note: string;
}

export const eventReasons = {
  tokenIssued: 'TokenIssued',
  tokensRevoked: 'TokensRevoked',
  serviceAccountCreated: 'ServiceAccountCreated',
  /** A label-less ServiceAccount (DPF v24.10's) its editor handed to the request, now labelled as its own. */
  serviceAccountAdopted: 'ServiceAccountAdopted',
  serviceAccountDeleted: 'ServiceAccountDeleted',
  /** Warnings: what the webhook made was relabelled by someone else, and deleted by its UID all the same. */
  anchorTampered: 'AnchorTampered',
  serviceAccountTampered: 'ServiceAccountTampered',
  recovered: 'Ready',
} as const;

/** Events fit in 1 KiB of note. */
const noteOf = (text: string) => (text.length > 1_000 ? `${text.slice(0, 997)}...` : text);

export const normal = (reason: string, note: string): EventNote => ({ type: 'Normal', reason, note: noteOf(note) });
export const warning = (reason: string, note: string): EventNote => ({ type: 'Warning', reason, note: noteOf(note) });

const readyOf = (status: DpuServiceCredentialRequestStatus | undefined) =>
  status?.conditions?.find((condition) => condition.type === conditionTypes.ready);

/**
 * A Warning when the request starts failing or fails for another reason, and a Normal
 * event each time it turns Ready: once per change, not at every retry. Pending (waiting for
 * Metacontroller to write the Secret) is part of every new token's life, not a failure.
 */
export function readinessChange(previous: DpuServiceCredentialRequestStatus | undefined, next: DpuServiceCredentialRequestStatus): EventNote[] {
  const before = readyOf(previous);
  const after = readyOf(next);
  if (!after) return [];
  if (after.status === 'True') return before?.status === 'True' ? [] : [normal(eventReasons.recovered, after.message)];
  if (after.reason === reasons.pending || (before?.status === 'False' && before.reason === after.reason)) return [];
  return [{ type: 'Warning', reason: after.reason, note: noteOf(after.message) }];
}
