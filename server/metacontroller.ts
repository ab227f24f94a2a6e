// Metacontroller hook request and response shapes, hook version v2 (children and
// related objects keyed "namespace/name" within "Kind.version" or "Kind.group/version").
import type { DpuClusterObject, DpuServiceCredentialRequest, DpuServiceCredentialRequestStatus, KubeObject, SecretObject } from './api.js';

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
