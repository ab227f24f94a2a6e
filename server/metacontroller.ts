// Metacontroller hook request and response shapes, hook version v2 (children and
// related objects keyed "namespace/name" within "Kind.version" or "Kind.group/version").
import { isRecord, type DpuClusterObject, type DpuServiceCredentialRequest, type DpuServiceCredentialRequestStatus, type KubeObject, type SecretObject } from './api.js';

export const secretChildKey = 'Secret.v1';
export const dpuClusterRelatedKey = 'DPUCluster.provisioning.dpu.nvidia.com/v1alpha1';

export type ObjectsByName<T> = Record<string, T>;

export interface SyncRequest {
  controller?: KubeObject;
  parent: DpuServiceCredentialRequest;
  children?: Record<string, ObjectsByName<KubeObject>> & { [secretChildKey]?: ObjectsByName<SecretObject> };
  related?: Record<string, ObjectsByName<KubeObject>> & { [dpuClusterRelatedKey]?: ObjectsByName<DpuClusterObject> };
  finalizing?: boolean;
}

export interface SyncResponse {
  status: DpuServiceCredentialRequestStatus;
  children: SecretObject[];
  resyncAfterSeconds: number;
  finalized?: boolean;
}

export interface CustomizeRequest {
  controller?: KubeObject;
  parent: DpuServiceCredentialRequest;
}

export interface RelatedResourceRule {
  apiVersion: string;
  resource: string;
  namespace?: string;
  names?: string[];
}

export interface CustomizeResponse {
  relatedResources: RelatedResourceRule[];
}

/** v2 key of an object in children/related maps. */
export const objectKey = (namespace: string, name: string) => `${namespace}/${name}`;


/**
 * Why a body is not a hook request, or undefined when it is one. Checks the shapes the hooks
 * read (a bad spec is not checked here: it is a request, and gets an InvalidSpec condition).
 */
export function hookRequestProblem(body: unknown): string | undefined {
  if (!isRecord(body)) return 'the body must be a JSON object';
  if (!isRecord(body.parent)) return 'parent: required, the DPUServiceCredentialRequest';
  const metadata = body.parent.metadata;
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || !metadata.name
    || typeof metadata.namespace !== 'string' || !metadata.namespace) {
    return 'parent.metadata.name and parent.metadata.namespace: required strings';
  }
  for (const field of ['children', 'related'] as const) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    const groups = isRecord(value) ? Object.values(value) : undefined;
    if (!groups || !groups.every((group) => group === null || (isRecord(group) && Object.values(group).every(isRecord)))) {
      return `${field}: must map "Kind.version" to objects keyed "namespace/name"`;
    }
  }
  const secrets = isRecord(body.children) && isRecord(body.children['Secret.v1']) ? Object.values(body.children['Secret.v1']) : [];
  for (const secret of secrets as Record<string, unknown>[]) {
    if (secret.data !== undefined && (!isRecord(secret.data) || !Object.values(secret.data).every((value) => typeof value === 'string'))) {
      return 'children: a Secret\'s data must map keys to base64 strings';
    }
  }
  const status = body.parent.status;
  if (status !== undefined && status !== null) {
    if (!isRecord(status)) return 'parent.status: must be an object';
    for (const field of ['serviceAccount', 'targetCluster', 'targetClusterUID', 'secret', 'issuedAt', 'expirationTimestamp', 'tokenID', 'failingSince'] as const) {
      if (status[field] !== undefined && typeof status[field] !== 'string') return `parent.status.${field}: must be a string`;
    }
    if (status.conditions !== undefined && (!Array.isArray(status.conditions) || !status.conditions.every(isRecord))) {
      return 'parent.status.conditions: must be a list of conditions';
    }
  }
  const annotations = metadata.annotations;
  if (annotations !== undefined && (!isRecord(annotations) || !Object.values(annotations).every((value) => typeof value === 'string'))) {
    return 'parent.metadata.annotations: must map keys to strings';
  }
  if (body.finalizing !== undefined && typeof body.finalizing !== 'boolean') return 'finalizing: must be a boolean';
  return undefined;
}
