// What an output Secret says about the token it holds: the token itself and the
// bookkeeping annotations written beside it. The next sync reads it back for token.ts
// to decide whether the token can stay.
import { parse } from 'yaml';
import { isRecord, type SecretObject } from '../api.js';
import { tokenAnnotations } from './names.js';
import type { TokenRecord } from './token.js';

// The Secret is read back from the API server, where anyone allowed to edit it may have
// written anything: every reader below takes what it finds as untrusted JSON and answers
// "no record" (a new token is minted) rather than throw, which would fail every sync.

// The token line renderKubeconfig writes, for a token JSON.stringify leaves as it is
// (visible ASCII but the quote and the backslash, as every JWT is): no unescaping needed.
const renderedTokenLine = /^ {6}token: "([!#-[\]-~]+)"$/m;
// A bearer token travels in an HTTP header: anything but visible ASCII was not minted
// by a TokenRequest, and could not be used.
const usableToken = /^[!-~]+$/;

const stringAt = (object: unknown, key: string): string | undefined => {
  const value = isRecord(object) ? object[key] : undefined;
  return typeof value === 'string' ? value : undefined;
};
const decode = (value: string) => Buffer.from(value, 'base64').toString('utf8');

/** The token of a kubeconfig this webhook rendered, or of any other (older or hand-edited). */
function tokenInKubeconfig(text: string): string | undefined {
  const rendered = renderedTokenLine.exec(text);
  if (rendered) return rendered[1];
  try {
    // logLevel error: YAML warnings about a hand-edited Secret are not worth a process warning.
    const config: unknown = parse(text, { logLevel: 'error' });
    const users = isRecord(config) ? config.users : undefined;
    const user = Array.isArray(users) && isRecord(users[0]) ? users[0].user : undefined;
    return stringAt(user, 'token');
  } catch {
    return undefined;
  }
}

/** The token in a Secret of either output type (the type may have changed since it was written). */
function tokenOf(data: unknown): string | undefined {
  const tokenFile = stringAt(data, 'TOKEN_FILE');
  const kubeconfig = stringAt(data, 'kubeconfig');
  const token = tokenFile ? decode(tokenFile).trim() : kubeconfig ? tokenInKubeconfig(decode(kubeconfig)) : undefined;
  return token !== undefined && usableToken.test(token) ? token : undefined;
}

/** A date the status can carry: RFC 3339 has four-digit years only. */
export function dateOf(text: string | undefined): Date | undefined {
  const date = text === undefined ? undefined : new Date(text);
  const year = date?.getUTCFullYear() ?? Number.NaN;
  return year >= 0 && year <= 9999 ? date : undefined;
}

export function readTokenRecord(secret: SecretObject | undefined): TokenRecord | undefined {
  if (!isRecord(secret)) return undefined;
  const annotations = isRecord(secret.metadata) ? secret.metadata.annotations : undefined;
  const annotation = (key: string) => stringAt(annotations, key);
  const token = tokenOf(secret.data);
  const issuedAt = dateOf(annotation(tokenAnnotations.issuedAt));
  const expiresAt = dateOf(annotation(tokenAnnotations.expiresAt));
  // A lifetime that is not positive was not written by this webhook.
  if (!token || !issuedAt || !expiresAt || expiresAt.getTime() <= issuedAt.getTime()) return undefined;
  return {
    token,
    issuedAt,
    expiresAt,
    serviceAccount: annotation(tokenAnnotations.serviceAccount) ?? '',
    serviceAccountUid: annotation(tokenAnnotations.serviceAccountUid) ?? '',
    targetCluster: annotation(tokenAnnotations.targetCluster) ?? '',
    targetClusterUid: annotation(tokenAnnotations.targetClusterUid) ?? '',
    duration: annotation(tokenAnnotations.duration) ?? '',
    rotation: annotation(tokenAnnotations.rotation) ?? '',
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
