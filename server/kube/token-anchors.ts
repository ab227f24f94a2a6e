// The anchor Secrets tokens are bound to (credential/token-anchors.ts says why). An
// anchor holds no data; it is owned by its ServiceAccount, so the garbage collector
// removes what is left of them when the ServiceAccount goes.
import { managedLabels, type NamespacedName } from '../credential/names.js';
import { planRemoval, type Removal } from '../credential/removal.js';
import { isAlreadyDeleted, isNotFound, KubeApiError, type ApiCaller } from './rest.js';

export const anchorLabel = 'svc.dpu.nvidia.com/token-anchor';
/** A Secret type of its own, so nothing mistakes an anchor for a credential. */
export const anchorSecretType = 'svc.dpu.nvidia.com/token-anchor';

export interface Anchor {
  name: string;
  uid: string;
}

/** Set on the anchor of a token minted for a forced rotation: when the last one was, read from the target itself. */
export const forcedRotationAnnotation = 'svc.dpu.nvidia.com/forced-rotation';

/** How a new anchor is made: `name` (credential/token-anchors.ts anchorNameFor) instead of a generated one. */
export interface AnchorOptions {
  name?: string;
  forcedRotation?: boolean;
}

/** An anchor as the target cluster has it: the ground truth of when a token was minted, whatever the status says. */
export interface AnchorState extends Anchor {
  createdAt: Date;
  forcedRotation: boolean;
  /** An anchor this request made (its type and labels); anything else of that name is left alone. */
  ours: boolean;
}

const secretsPath = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;

/** Creates an anchor; one of `options.name` that exists already fails with 409 (AlreadyExists). */
export async function createAnchor(client: ApiCaller, serviceAccount: NamespacedName & { uid: string }, request: NamespacedName,
  options: AnchorOptions = {}): Promise<Anchor> {
  const created = await client.request<{ metadata?: { name?: string; uid?: string } }>('POST', secretsPath(serviceAccount.namespace), {
    apiVersion: 'v1',
    kind: 'Secret',
    type: anchorSecretType,
    metadata: {
      ...(options.name ? { name: options.name } : { generateName: `${serviceAccount.name.slice(0, 40)}-token-` }),
      namespace: serviceAccount.namespace,
      labels: { ...managedLabels(request.namespace, request.name), [anchorLabel]: 'true' },
      ...(options.forcedRotation ? { annotations: { [forcedRotationAnnotation]: 'true' } } : {}),
      ownerReferences: [{ apiVersion: 'v1', kind: 'ServiceAccount', name: serviceAccount.name, uid: serviceAccount.uid }],
    },
  });
  const name = created?.metadata?.name;
  const uid = created?.metadata?.uid;
  if (!name || !uid) throw new KubeApiError(200, 'InvalidResponse', 'the created anchor Secret has no name or uid');
  return { name, uid };
}

interface AnchorObject {
  type?: string;
  metadata?: {
    name?: string; uid?: string; creationTimestamp?: string; labels?: Record<string, string>; annotations?: Record<string, string>;
    ownerReferences?: { kind?: string; name?: string }[];
  };
}

/** Whether `existing` has the type and labels of an anchor this request made (for any of its ServiceAccounts). */
function isAnchorForRequest(existing: AnchorObject | undefined, request: NamespacedName): boolean {
  if (existing?.type !== anchorSecretType) return false;
  const labels = existing.metadata?.labels ?? {};
  const madeFor = managedLabels(request.namespace, request.name);
  return labels[anchorLabel] === 'true' && Object.entries(madeFor).every(([key, value]) => labels[key] === value);
}

/** The anchor of that name, read from the target (metadata only: an anchor holds no data); undefined: there is none. */
export async function readAnchor(client: ApiCaller, namespace: string, name: string, request: NamespacedName): Promise<AnchorState | undefined> {
  let existing: AnchorObject | undefined;
  try {
    existing = await client.request<AnchorObject>('GET', `${secretsPath(namespace)}/${encodeURIComponent(name)}`);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const created = Date.parse(existing?.metadata?.creationTimestamp ?? '');
  return {
    name,
    uid: existing?.metadata?.uid ?? '',
    createdAt: new Date(Number.isNaN(created) ? 0 : created),
    forcedRotation: existing?.metadata?.annotations?.[forcedRotationAnnotation] === 'true',
    ours: isAnchorForRequest(existing, request),
  };
}

/** Deletes the anchor `anchor` names if it is still that object (UID precondition), revoking its token; gone already is fine. */
export async function revokeAnchor(client: ApiCaller, namespace: string, anchor: Anchor): Promise<void> {
  try {
    await client.request('DELETE', `${secretsPath(namespace)}/${encodeURIComponent(anchor.name)}`,
      { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: anchor.uid } });
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
}

/**
 * Whether `existing` is labelled and owned as an anchor this request made for that
 * ServiceAccount. Labels and owner may be patched by anyone who may patch Secrets there:
 * with the anchor's recorded UID they only tell tampering apart (credential/removal.ts).
 */
function isLabelledAnchorOf(existing: AnchorObject, request: NamespacedName, serviceAccountName: string): boolean {
  const labels = existing.metadata?.labels ?? {};
  const madeFor = managedLabels(request.namespace, request.name);
  if (labels[anchorLabel] !== 'true' || Object.entries(madeFor).some(([key, value]) => labels[key] !== value)) return false;
  return (existing.metadata?.ownerReferences ?? []).some((owner) => owner.kind === 'ServiceAccount' && owner.name === serviceAccountName);
}

/**
 * Deletes the anchor of a token issued for `request` to the ServiceAccount
 * `serviceAccountName`. `madeWithUid`: its UID when it was created; the Secret of that UID
 * is deleted whatever its labels say now. Without it (recorded by an older version) only a
 * Secret still labelled as this request's anchor is. A Secret of another type, or of another
 * UID, is left alone: the anchor that name had is gone (credential/removal.ts).
 */
export async function deleteAnchor(client: ApiCaller, namespace: string, name: string, request: NamespacedName,
  serviceAccountName: string, madeWithUid?: string): Promise<Removal> {
  const path = `${secretsPath(namespace)}/${encodeURIComponent(name)}`;
  try {
    const existing = await client.request<AnchorObject>('GET', path);
    const plan = planRemoval(existing?.metadata?.uid ? {
      uid: existing.metadata.uid,
      // The type of a Secret cannot change: one of another type was never an anchor.
      ofOurKind: existing.type === anchorSecretType,
      labelledOurs: isLabelledAnchorOf(existing, request, serviceAccountName),
    } : undefined, madeWithUid);
    if (!plan.delete) return plan.as;
    await client.request('DELETE', path, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: plan.uid } });
    return plan.as;
  } catch (error) {
    if (isAlreadyDeleted(error)) return 'absent';
    throw error;
  }
}
