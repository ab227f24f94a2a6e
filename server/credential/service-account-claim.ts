// Whether a request may use the ServiceAccount it finds under the name its spec gives, decided
// from what that ServiceAccount says now (kube/service-accounts.ts reads and writes it).
//
// The managed labels say which request a ServiceAccount was made for. Two more ways make one a
// request's without them:
// - the UID recorded in the request's status when the webhook ensured it: the labels were
//   stripped (tampering), but the API server checks tokens by that UID, and refusing it would let
//   whoever stripped them block the rotation that ends a leaked token;
// - consent (adoptServiceAccountAnnotation): DPF v24.10's controller made its ServiceAccounts
//   without labels, and users bound RBAC to them. Whoever may edit such a ServiceAccount hands it
//   to one request by annotating it with that request's "namespace/name" on the host. The
//   namespace is part of the value because the ServiceAccount lives in another cluster (or
//   another namespace of the host) than the request: a bare name would also match a stranger's
//   request of the same name in any namespace granted that ServiceAccount's namespace.
//
//   labels                       recorded UID       annotation              claim
//   name this request            any                any                     own
//   anything else                this one's UID     any                     reclaim (labels restored)
//   name another request         none / another     any                     refused (another request's)
//   none of ours                 none / another     "<ns>/<this request>"   adopt (labels written)
//   none of ours                 none / another     absent, or another      refused
// A ServiceAccount carrying any managed label but not all three naming this request counts as
// another request's: consent never moves a ServiceAccount from one request to another.
import { adoptAnnotation, managedByLabel, managedByValue, namespacedName, requestNameLabel, requestNamespaceLabel, type NamespacedName } from './names.js';

/** The consent annotation: the same key as a Secret's, valued "namespace/name" of the request on the host. */
export const adoptServiceAccountAnnotation = adoptAnnotation;

/** The consent value that hands a ServiceAccount to `request`. */
export const adoptionConsentFor = (request: NamespacedName) => namespacedName(request.namespace, request.name);

/** What the decision reads of a ServiceAccount. */
export interface FoundServiceAccount {
  uid: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export type ServiceAccountClaim =
  | { kind: 'own' }
  /** Its labels were stripped; it has the UID recorded for this request: restore them. */
  | { kind: 'reclaim' }
  /** Label-less, and its editor consented to this request: write the labels. */
  | { kind: 'adopt' }
  | { kind: 'refused'; why: 'labelledForAnother' | 'noConsent' | 'consentForAnother' };

const ourLabels = [managedByLabel, requestNameLabel, requestNamespaceLabel] as const;

export function claimServiceAccount(found: FoundServiceAccount, request: NamespacedName, recordedUid: string | undefined): ServiceAccountClaim {
  const labels = found.labels ?? {};
  if (labels[managedByLabel] === managedByValue && labels[requestNameLabel] === request.name
    && labels[requestNamespaceLabel] === request.namespace) return { kind: 'own' };
  if (recordedUid && found.uid === recordedUid) return { kind: 'reclaim' };
  if (ourLabels.some((key) => Object.hasOwn(labels, key))) return { kind: 'refused', why: 'labelledForAnother' };
  const consent = found.annotations?.[adoptServiceAccountAnnotation];
  if (consent === undefined) return { kind: 'refused', why: 'noConsent' };
  return consent === adoptionConsentFor(request) ? { kind: 'adopt' } : { kind: 'refused', why: 'consentForAnother' };
}
