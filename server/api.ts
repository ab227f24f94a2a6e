// Wire types of the DPUServiceCredentialRequest API (svc.dpu.nvidia.com/v1alpha1) and
// of the objects this webhook reads and writes. Incoming objects are untrusted: the
// credential/validate module turns a parent's spec into a ValidSpec.

export const apiGroup = 'svc.dpu.nvidia.com';
export const apiVersion = `${apiGroup}/v1alpha1`;
export const kind = 'DPUServiceCredentialRequest';

export type SecretType = 'kubeconfig' | 'tokenFile';

/** A JSON object (not null, not an array): the first check on every untrusted value. */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** A ServiceAccount a request made (status.serviceAccounts). */
export interface ServiceAccountEntry {
  /** "namespace/name". */
  serviceAccount: string;
  /** "namespace/name" of its DPUCluster; absent for the host cluster. */
  targetCluster?: string;
  targetClusterUID?: string;
  /** Fingerprint of the API server's URL and CA. */
  clusterID?: string;
  /** The ServiceAccount's UID when the webhook made or found it: what it deletes, whatever its labels say by then. */
  serviceAccountUID?: string;
}

/** A token's anchor Secret (status.tokenAnchors). */
export interface TokenAnchorEntry extends Omit<ServiceAccountEntry, 'serviceAccountUID'> {
  anchor: string;
  /** The anchor Secret's UID, known when it was created: the token's binding, and what the webhook deletes. */
  anchorUID?: string;
  rotation: string;
  expiresAt: string;
  /** When a sync first saw the Secret holding the token that renewed this one (RFC 3339). */
  supersededAt?: string;
}

export interface DpuServiceCredentialRequestStatus {
  serviceAccount?: string;
  targetCluster?: string;
  targetClusterUID?: string;
  secret?: string;
  issuedAt?: string;
  expirationTimestamp?: string;
  /** Every ServiceAccount this request made and has not deleted yet. */
  serviceAccounts?: ServiceAccountEntry[];
  /** The anchors of the tokens issued and not revoked yet (credential/token-anchors.ts). */
  tokenAnchors?: TokenAnchorEntry[];
  /** When a rotation last revoked the tokens issued before it. */
  previousTokensRevokedAt?: string;
  /** When a forced rotation (the rotate annotation) last minted a token. */
  lastForcedRotationAt?: string;
  /** While a forced rotation waits for the minimum interval: when it is allowed. */
  forcedRotationAllowedAt?: string;
  /** The jti claim of the token issued last. */
  tokenID?: string;
  /** While Ready is False: when its current reason was first reported. */
  failingSince?: string;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: unknown[];
  managedFields?: unknown[];
  finalizers?: string[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

export interface DpuServiceCredentialRequest extends KubeObject {
  /** Untrusted until validated. */
  spec?: unknown;
  status?: DpuServiceCredentialRequestStatus;
}

export interface SecretObject extends KubeObject {
  type?: string;
  immutable?: boolean;
  data?: Record<string, string>;
}

export interface DpuClusterObject extends KubeObject {
  spec?: { kubeconfig?: string; type?: string };
}
