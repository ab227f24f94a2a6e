// The anchor Secrets tokens are bound to (credential/token-anchors.ts says why). An
// anchor holds no data; it is owned by its ServiceAccount, so the garbage collector
// removes what is left of them when the ServiceAccount goes.
import { managedLabels } from '../credential/names.js';
import type { NamespacedName } from '../credential/validate.js';
import { isNotFound, KubeApiError, type ApiCaller } from './rest.js';

export const anchorLabel = 'svc.dpu.nvidia.com/token-anchor';
/** A Secret type of its own, so nothing mistakes an anchor for a credential. */
export const anchorSecretType = 'svc.dpu.nvidia.com/token-anchor';

export interface Anchor {
  name: string;
  uid: string;
}

const secretsPath = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;

export async function createAnchor(client: ApiCaller, serviceAccount: NamespacedName & { uid: string }, request: NamespacedName): Promise<Anchor> {
  const created = await client.request<{ metadata?: { name?: string; uid?: string } }>('POST', secretsPath(serviceAccount.namespace), {
    apiVersion: 'v1',
    kind: 'Secret',
    type: anchorSecretType,
    metadata: {
      generateName: `${serviceAccount.name.slice(0, 40)}-token-`,
      namespace: serviceAccount.namespace,
      labels: { ...managedLabels(request.namespace, request.name), [anchorLabel]: 'true' },
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
  metadata?: { uid?: string; labels?: Record<string, string>; ownerReferences?: { kind?: string; name?: string }[] };
}

/**
 * Whether `existing` is an anchor this request made for that ServiceAccount: its type, its
 * labels and its owner. An anchor name comes from the status or from a token read out of a
 * Secret, both of which others may have written: a Secret it names is deleted only if so.
 */
function isAnchorOf(existing: AnchorObject | undefined, request: NamespacedName, serviceAccountName: string): boolean {
  if (existing?.type !== anchorSecretType) return false;
  const labels = existing.metadata?.labels ?? {};
  const madeFor = managedLabels(request.namespace, request.name);
  if (labels[anchorLabel] !== 'true' || Object.entries(madeFor).some(([key, value]) => labels[key] !== value)) return false;
  return (existing.metadata?.ownerReferences ?? []).some((owner) => owner.kind === 'ServiceAccount' && owner.name === serviceAccountName);
}

/**
 * Deletes the anchor of a token issued for `request` to the ServiceAccount
 * `serviceAccountName`; gone already is fine. A Secret that is not such an anchor is left
 * alone (and counts as gone: it never held one of this request's tokens).
 */
export async function deleteAnchor(client: ApiCaller, namespace: string, name: string, request: NamespacedName,
  serviceAccountName: string): Promise<void> {
  const path = `${secretsPath(namespace)}/${encodeURIComponent(name)}`;
  try {
    const existing = await client.request<AnchorObject>('GET', path);
    if (!isAnchorOf(existing, request, serviceAccountName)) return;
    await client.request('DELETE', path, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: existing.metadata?.uid } });
  } catch (error) {
    if (isNotFound(error) || (error instanceof KubeApiError && error.statusCode === 409)) return;
    throw error;
  }
}
