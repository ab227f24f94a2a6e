// Spec validation: what the CRD enforces, checked again (a hook can be called by hand,
// or before the CRD was updated), plus the rules only the hook can check.
import { isRecord, type DpuServiceCredentialRequest, type ObjectMeta, type SecretType } from '../api.js';
import { parseDurationMs } from './duration.js';
import { rotateAnnotation, type NamespacedName } from './names.js';

/** The TokenRequest API rejects shorter tokens. */
export const minTokenDurationMs = 10 * 60_000;
/** The TokenRequest API rejects longer tokens (expirationSeconds <= 2^32). */
export const maxTokenDurationMs = 2 ** 32 * 1_000;
const maxRequestNameLength = 63;
/** The rotate value is copied into the Secret's annotations and every anchor's status entry. */
const maxRotationLength = 63;
/**
 * The label Metacontroller (generateSelector: true) puts on every child, set to the
 * parent's UID, and selects children by. A desired Secret carrying it with any other
 * value fails the whole sync, so no status is ever written: refused here and by the CRD.
 */
const metacontrollerSelectorLabel = 'controller-uid';

export interface ValidSpec {
  request: NamespacedName & { uid: string; generation: number };
  serviceAccount: NamespacedName;
  /** Absent: the host cluster. */
  targetCluster?: NamespacedName;
  type: SecretType;
  secret: NamespacedName;
  /** The requested lifetime in whole seconds; absent: the API server's default. */
  expirationSeconds?: number;
  secretLabels: Record<string, string>;
  secretAnnotations: Record<string, string>;
  /** Value of the forced-rotation annotation ('' when absent). */
  rotation: string;
}

export type Validation = { valid: true; spec: ValidSpec } | { valid: false; problems: string[] };

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const qualifiedNamePart = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;


function isQualifiedKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !dnsSubdomain.test(prefix))) return false;
  return name.length <= 63 && qualifiedNamePart.test(name);
}

function checkName(value: unknown, field: string, problems: string[]): string | undefined {
  if (typeof value !== 'string' || value === '') {
    problems.push(`${field}: required, a DNS subdomain name`);
    return undefined;
  }
  if (value.length > 253 || !dnsSubdomain.test(value)) {
    problems.push(`${field}: "${printable(value)}" is not a valid name (lowercase letters, digits, '-' and '.', at most 253 characters)`);
    return undefined;
  }
  return value;
}

function checkNamespace(value: unknown, field: string, fallback: string, problems: string[]): string {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || value.length > 63 || !dnsLabel.test(value)) {
    problems.push(`${field}: "${printable(value)}" is not a valid namespace (a DNS label of at most 63 characters)`);
    return fallback;
  }
  return value;
}

function checkRef(value: unknown, field: string, requestNamespace: string, problems: string[]): NamespacedName | undefined {
  if (!isRecord(value)) {
    problems.push(`${field}: required, an object with name and optional namespace`);
    return undefined;
  }
  const name = checkName(value.name, `${field}.name`, problems);
  const namespace = checkNamespace(value.namespace, `${field}.namespace`, requestNamespace, problems);
  return name === undefined ? undefined : { namespace, name };
}

function checkStringMap(value: unknown, field: string, problems: string[], isLabels: boolean): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) {
    problems.push(`${field}: must be a map of strings`);
    return {};
  }
  const result: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      problems.push(`${field}["${printable(key)}"]: must be a string`);
    } else if (!isQualifiedKey(key)) {
      problems.push(`${field}: "${printable(key)}" is not a valid key`);
    } else if (isLabels && (entry.length > 63 || !labelValue.test(entry))) {
      problems.push(`${field}["${key}"]: "${printable(entry)}" is not a valid label value`);
    } else {
      result[key] = entry;
    }
  }
  return result;
}

/** Keeps messages one readable line whatever a user typed. */
function printable(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}

function checkDuration(value: unknown, problems: string[]): { expirationSeconds?: number } {
  if (value === undefined || value === '') return {};
  const durationMs = typeof value === 'string' ? parseDurationMs(value) : undefined;
  if (durationMs === undefined) {
    problems.push(`spec.duration: "${printable(value)}" is not a duration such as 1h, 90m or 1h30m (units h, m, s, ms)`);
    return {};
  }
  if (durationMs < minTokenDurationMs) {
    problems.push(`spec.duration: ${printable(value)} is shorter than the TokenRequest minimum of 10m`);
  } else if (durationMs > maxTokenDurationMs) {
    problems.push(`spec.duration: ${printable(value)} is longer than the TokenRequest maximum of 2^32 seconds`);
  }
  return { expirationSeconds: Math.floor(durationMs / 1_000) };
}

/** The request's own name and rotation annotation; returns the rotation. */
function checkRequestMetadata(metadata: ObjectMeta, problems: string[]): string {
  if ((metadata.name ?? '').length > maxRequestNameLength) {
    problems.push(`metadata.name: at most ${maxRequestNameLength} characters (it is used as a label value)`);
  }
  const rotation = metadata.annotations?.[rotateAnnotation] ?? '';
  if (typeof rotation !== 'string' || rotation.length > maxRotationLength) {
    problems.push(`metadata.annotations["${rotateAnnotation}"]: at most ${maxRotationLength} characters (a timestamp or a counter will do)`);
  }
  return rotation;
}

/** spec.metadata: the labels and annotations the Secret is given. */
function checkSecretMetadata(value: unknown, problems: string[]): { secretLabels: Record<string, string>; secretAnnotations: Record<string, string> } {
  const secretMetadata = isRecord(value) ? value : {};
  if (value !== undefined && !isRecord(value)) problems.push('spec.metadata: must be an object');
  const secretLabels = checkStringMap(secretMetadata.labels, 'spec.metadata.labels', problems, true);
  if (isRecord(secretMetadata.labels) && Object.hasOwn(secretMetadata.labels, metacontrollerSelectorLabel)) {
    problems.push(`spec.metadata.labels: "${metacontrollerSelectorLabel}" is reserved: Metacontroller selects this request's Secret by it`);
  }
  const secretAnnotations = checkStringMap(secretMetadata.annotations, 'spec.metadata.annotations', problems, false);
  return { secretLabels, secretAnnotations };
}

export function validateRequest(parent: DpuServiceCredentialRequest): Validation {
  const problems: string[] = [];
  const metadata = parent.metadata ?? {};
  const requestName = metadata.name ?? '';
  const requestNamespace = metadata.namespace ?? '';
  const rotation = checkRequestMetadata(metadata, problems);
  const spec = parent.spec;
  if (!isRecord(spec)) return { valid: false, problems: [...problems, 'spec: required'] };

  const serviceAccount = checkRef(spec.serviceAccount, 'spec.serviceAccount', requestNamespace, problems);
  const secret = checkRef(spec.secret, 'spec.secret', requestNamespace, problems);
  if (secret && secret.namespace !== requestNamespace) {
    problems.push(`spec.secret.namespace: must be omitted or equal the request's namespace "${requestNamespace}" ` +
      `(Metacontroller creates children only in the parent's namespace)`);
  }
  const targetCluster = spec.targetCluster === undefined || spec.targetCluster === null
    ? undefined
    : checkRef(spec.targetCluster, 'spec.targetCluster', requestNamespace, problems);
  const type = spec.type;
  if (type !== 'kubeconfig' && type !== 'tokenFile') {
    problems.push(`spec.type: must be kubeconfig or tokenFile (got "${printable(type ?? '')}")`);
  }
  const { expirationSeconds } = checkDuration(spec.duration, problems);
  const { secretLabels, secretAnnotations } = checkSecretMetadata(spec.metadata, problems);

  if (problems.length > 0 || !serviceAccount || !secret) return { valid: false, problems };
  return {
    valid: true,
    spec: {
      request: { namespace: requestNamespace, name: requestName, uid: metadata.uid ?? '', generation: metadata.generation ?? 0 },
      serviceAccount,
      ...(targetCluster ? { targetCluster } : {}),
      type: type as SecretType,
      secret,
      ...(expirationSeconds !== undefined ? { expirationSeconds } : {}),
      secretLabels,
      secretAnnotations,
      rotation,
    },
  };
}
