// What an output Secret says about the token it holds: the token itself and the
// bookkeeping annotations written beside it. The next sync reads it back to decide
// whether the token can stay.
import { parse } from 'yaml';
import type { SecretObject } from '../api.js';
import { tokenAnnotations } from './names.js';

export interface TokenIdentity {
  /** "namespace/name" of the ServiceAccount in the target cluster. */
  serviceAccount: string;
  serviceAccountUid: string;
  /** "namespace/name" of the DPUCluster; '' for the host cluster. */
  targetCluster: string;
  targetClusterUid: string;
  /** The spec's duration text; '' for the API server's default. */
  duration: string;
  rotation: string;
}

export interface TokenRecord extends TokenIdentity {
  token: string;
  issuedAt: Date;
  expiresAt: Date;
}

const renderedTokenLine = /^ {6}token: ("[^"\\\n]*")$/m;
const decode = (value: string | undefined) => (value ? Buffer.from(value, 'base64').toString('utf8') : '');

/** The token in a Secret of either output type (the type may have changed since it was written). */
function tokenOf(secret: SecretObject): string {
  const data = secret.data ?? {};
  if (data.TOKEN_FILE) return decode(data.TOKEN_FILE).trim();
  if (!data.kubeconfig) return '';
  const text = decode(data.kubeconfig);
  // The line renderKubeconfig writes; anything else (an older or hand-edited Secret) is parsed.
  const rendered = renderedTokenLine.exec(text);
  if (rendered) return JSON.parse(rendered[1]!) as string;
  try {
    const config = parse(text) as { users?: { user?: { token?: unknown } }[] } | null;
    const token = config?.users?.[0]?.user?.token;
    return typeof token === 'string' ? token : '';
  } catch {
    return '';
  }
}

function dateOf(text: string | undefined): Date | undefined {
  const date = text ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
}

export function readTokenRecord(secret: SecretObject | undefined): TokenRecord | undefined {
  if (!secret) return undefined;
  const annotations = secret.metadata?.annotations ?? {};
  const token = tokenOf(secret);
  const issuedAt = dateOf(annotations[tokenAnnotations.issuedAt]);
  const expiresAt = dateOf(annotations[tokenAnnotations.expiresAt]);
  if (!token || !issuedAt || !expiresAt) return undefined;
  return {
    token,
    issuedAt,
    expiresAt,
    serviceAccount: annotations[tokenAnnotations.serviceAccount] ?? '',
    serviceAccountUid: annotations[tokenAnnotations.serviceAccountUid] ?? '',
    targetCluster: annotations[tokenAnnotations.targetCluster] ?? '',
    targetClusterUid: annotations[tokenAnnotations.targetClusterUid] ?? '',
    duration: annotations[tokenAnnotations.duration] ?? '',
    rotation: annotations[tokenAnnotations.rotation] ?? '',
  };
}

export function tokenRecordAnnotations(record: TokenRecord): Record<string, string> {
  return {
    [tokenAnnotations.issuedAt]: record.issuedAt.toISOString(),
    [tokenAnnotations.expiresAt]: record.expiresAt.toISOString(),
    [tokenAnnotations.serviceAccount]: record.serviceAccount,
    [tokenAnnotations.serviceAccountUid]: record.serviceAccountUid,
    [tokenAnnotations.targetCluster]: record.targetCluster,
    [tokenAnnotations.targetClusterUid]: record.targetClusterUid,
    [tokenAnnotations.duration]: record.duration,
    [tokenAnnotations.rotation]: record.rotation,
  };
}
