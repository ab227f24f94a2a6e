// ServiceAccounts in a target cluster: made with the managed labels, and never used unless
// those labels name the request asking, it has the UID recorded when it was made (its
// labels, stripped by someone who may patch ServiceAccounts there, are then restored), or it
// is label-less and its editor consented to this request (credential/service-account-claim.ts;
// the labels are then written); deleted by that UID (or, without one, by those labels).
import { managedByLabel, managedByValue, managedLabels, requestNameLabel, requestNamespaceLabel, type NamespacedName } from '../credential/names.js';
import { claimServiceAccount } from '../credential/service-account-claim.js';
import { planRemoval, type Removal } from '../credential/removal.js';
import { isAlreadyDeleted, isNotFound, KubeApiError, type ApiCaller } from './rest.js';
import type { ServiceAccountCache } from './service-account-cache.js';

/** The ServiceAccount's namespace does not exist in the target cluster (it is never created). */
export class NamespaceMissingError extends Error {
  override name = 'NamespaceMissingError';
  constructor(readonly account: NamespacedName, readonly request: NamespacedName) {
    super(`namespace ${account.namespace} does not exist`);
  }
}

/** A ServiceAccount of that name exists and was not made for the request asking. */
export class ServiceAccountInUseError extends Error {
  override name = 'ServiceAccountInUseError';
  /** `why`: undefined when it vanished or changed under the label patch; `labelsRefused`: handed over, but the cluster refused the labels. */
  constructor(readonly account: NamespacedName, readonly why?: 'labelledForAnother' | 'noConsent' | 'consentForAnother' | 'labelsRefused',
    readonly request?: NamespacedName) {
    super(`service account ${account.namespace}/${account.name} is not managed for this request`);
  }
}

interface ServiceAccountObject {
  metadata?: { uid?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
}

export interface EnsuredServiceAccount {
  uid: string;
  /** Made now. */
  created: boolean;
  /**
   * It had lost the request's labels (tampering) but has the UID recorded for it: the request's own,
   * used all the same. `relabelled`: its labels were restored; `unlabelled`: the patch was forbidden
   * (in the host, webhook-identity.yaml admits only an adoption's), it is used without them.
   */
  tampered?: 'relabelled' | 'unlabelled';
  /** It was label-less and consented to this request (DPF v24.10's): now labelled as the request's, the same object. */
  adopted?: true;
}

const path = (namespace: string, name?: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

function isManagedBy(account: ServiceAccountObject, request: NamespacedName): boolean {
  const labels = account.metadata?.labels ?? {};
  return labels[managedByLabel] === managedByValue
    && labels[requestNameLabel] === request.name
    && labels[requestNamespaceLabel] === request.namespace;
}

/** The ServiceAccount as the cache (first attempt only) or the API server has it; undefined when there is none. */
async function readServiceAccount(client: ApiCaller, account: NamespacedName, cache: ServiceAccountCache | undefined, attempt: number,
): Promise<ServiceAccountObject | undefined> {
  const cached = attempt === 1 ? cache?.lookup(account.namespace, account.name) : undefined;
  if (cached) return cached;
  // null: the cache knows there is none.
  if (cached !== undefined) return undefined;
  try {
    // resourceVersion=0 is served from the API server's watch cache instead of a quorum read
    // from etcd: much cheaper, at most milliseconds stale. The retry after a conflict reads etcd.
    const consistency = attempt === 1 ? '?resourceVersion=0' : '';
    return await client.request<ServiceAccountObject>('GET', `${path(account.namespace, account.name)}${consistency}`);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    return undefined;
  }
}

/**
 * Creates the request's ServiceAccount with the managed labels; `exists` when one of that name
 * exists after all (409) on the first attempt: the caller then reads it again, once.
 */
async function createServiceAccount(client: ApiCaller, account: NamespacedName, request: NamespacedName,
  cache: ServiceAccountCache | undefined, attempt: number): Promise<{ made: ServiceAccountObject } | 'exists'> {
  const target = path(account.namespace);
  let made: ServiceAccountObject | undefined;
  try {
    made = await client.request<ServiceAccountObject | undefined>('POST', target, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: account.name, namespace: account.namespace, labels: managedLabels(request.namespace, request.name) },
      automountServiceAccountToken: false,
    });
  } catch (error) {
    if (isNotFound(error)) {
      throw new NamespaceMissingError(account, request);
    }
    // Made by someone else meanwhile, or not managed (the cache does not see those): read it from etcd once.
    if (error instanceof KubeApiError && error.statusCode === 409 && attempt === 1) return 'exists';
    throw error;
  }
  // A target that answers a create with no object (a broken or hostile API server) gets a clear error, not a retry.
  if (!made?.metadata?.uid) throw new KubeApiError(200, 'InvalidResponse', `POST ${target}: the answer holds no ServiceAccount`);
  cache?.remember(made);
  return { made };
}

/**
 * Gets or creates the ServiceAccount for `request`; returns its UID, and whether it was made now. The cache answers
 * when it can; it knows only managed ServiceAccounts, so an unmanaged one of that name
 * shows up as a conflict on create and is then read from the API. `account.uid`: the UID
 * recorded when it was made; one of that UID whose labels were stripped is still the
 * request's (the API server checks its tokens by that UID, not by labels): refusing it would
 * let whoever stripped them block the rotation that ends a leaked token. One of another UID,
 * or unlabelled with no UID on record, is someone else's and refused.
 */
export async function ensureServiceAccount(
  client: ApiCaller, account: NamespacedName & { uid?: string }, request: NamespacedName, cache?: ServiceAccountCache, attempt = 1,
): Promise<EnsuredServiceAccount> {
  let existing = await readServiceAccount(client, account, cache, attempt);
  let created = false;
  if (!existing) {
    const creation = await createServiceAccount(client, account, request, cache, attempt);
    if (creation === 'exists') return ensureServiceAccount(client, account, request, cache, attempt + 1);
    existing = creation.made;
    created = true;
  }
  const uid = existing.metadata?.uid ?? '';
  const claim = claimServiceAccount({ uid, ...existing.metadata }, request, account.uid);
  switch (claim.kind) {
    case 'own': return { uid, created };
    case 'reclaim': {
      const tampered = await restoreLabels(client, account, uid, request, cache);
      return { uid, created, tampered };
    }
    case 'adopt': {
      // Only as the consent was read: a read from the watch cache may be stale, and consent withdrawn since must
      // hold. A change since the read fails the patch (409); the retry reads etcd and decides again.
      const adopted = await restoreLabels(client, account, uid, request, cache, existing.metadata?.resourceVersion);
      if (adopted === 'changed' && attempt === 1) return ensureServiceAccount(client, account, request, cache, attempt + 1);
      // Written, or not used: an adopted ServiceAccount left label-less would be no one's after a lost status.
      if (adopted === 'unlabelled') throw new ServiceAccountInUseError(account, 'labelsRefused', request);
      if (adopted === 'changed') throw new ServiceAccountInUseError(account);
      return { uid, created, adopted: true };
    }
    case 'refused': throw new ServiceAccountInUseError(account, claim.why, request);
  }
}

/**
 * Puts the managed labels on the request's ServiceAccount (its own, stripped; or adopted), so the cache and the label
 * checks know it. The same object stays: the RBAC bound to it and the tokens issued for it keep working.
 */
function restoreLabels(client: ApiCaller, account: NamespacedName, uid: string, request: NamespacedName,
  cache?: ServiceAccountCache): Promise<'relabelled' | 'unlabelled'>;
/** With `resourceVersion`: 'changed' when the object changed since that read. */
function restoreLabels(client: ApiCaller, account: NamespacedName, uid: string, request: NamespacedName,
  cache: ServiceAccountCache | undefined, resourceVersion: string | undefined): Promise<'relabelled' | 'unlabelled' | 'changed'>;
async function restoreLabels(client: ApiCaller, account: NamespacedName, uid: string, request: NamespacedName,
  cache?: ServiceAccountCache, resourceVersion?: string): Promise<'relabelled' | 'unlabelled' | 'changed'> {
  try {
    // The UID in the patch is a precondition: one recreated meanwhile under that name is refused (409 or 422);
    // so is the resourceVersion when given: any change since that read is refused (409).
    const patched = await client.request<ServiceAccountObject & { metadata?: { name?: string; namespace?: string } }>(
      'PATCH', path(account.namespace, account.name),
      { metadata: { uid, ...(resourceVersion ? { resourceVersion } : {}), labels: managedLabels(request.namespace, request.name) } },
      { contentType: 'application/merge-patch+json' });
    cache?.remember(patched);
    return 'relabelled';
  } catch (error) {
    if (!(error instanceof KubeApiError)) throw error;
    // Refused (403): in the host, webhook-identity.yaml admits no relabelling but an adoption. Its tokens are bound to
    // its UID, so a reclaimed one is used unlabelled; an adoption without its labels is refused by the caller.
    if (error.statusCode === 403) return 'unlabelled';
    if (error.statusCode === 409 && resourceVersion) return 'changed';
    if (isNotFound(error) || error.statusCode === 409 || error.statusCode === 422) throw new ServiceAccountInUseError(account);
    throw error;
  }
}

/**
 * Deletes a ServiceAccount made for `request`. `account.uid`: its UID when it was made; the
 * ServiceAccount of that UID is deleted whatever its labels say now (`tampered` when they no
 * longer name the request), one of another UID is left alone (ours is gone). Without it
 * (recorded by an older version) only one still labelled for `request` is deleted.
 */
export async function deleteManagedServiceAccount(
  client: ApiCaller, account: NamespacedName & { uid?: string }, request: NamespacedName, cache?: ServiceAccountCache,
): Promise<Removal> {
  let existing: ServiceAccountObject;
  try {
    existing = await client.request<ServiceAccountObject>('GET', path(account.namespace, account.name));
  } catch (error) {
    if (isNotFound(error)) return 'absent';
    throw error;
  }
  const plan = planRemoval(existing.metadata?.uid
    ? { uid: existing.metadata.uid, ofOurKind: true, labelledOurs: isManagedBy(existing, request) }
    : undefined, account.uid);
  if (!plan.delete) return plan.as;
  try {
    // The UID precondition keeps a ServiceAccount recreated meanwhile by someone else.
    await client.request('DELETE', path(account.namespace, account.name), {
      apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: plan.uid },
    });
    cache?.forget(account.namespace, account.name);
    return plan.as;
  } catch (error) {
    if (isAlreadyDeleted(error)) return 'absent';
    throw error;
  }
}
