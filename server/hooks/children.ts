// The Secret children Metacontroller reports: what they hold (each read once per sync),
// which is current and which its predecessor, and how to return them unchanged.
import { isRecord, type DpuServiceCredentialRequest, type SecretObject } from '../api.js';
import { namespacedName } from '../credential/names.js';
import type { IssuedToken } from '../credential/observed-secret.js';
import { anchorsOf } from '../credential/token-anchors.js';
import type { TokenRecord } from '../credential/token.js';
import { readTokenRecord } from '../credential/token-record.js';
import { bindingOf } from '../kube/tokens.js';

/**
 * The observed children this webhook wrote. Metacontroller adopts as a child any Secret of the
 * request's namespace labelled with its controller-uid, so labels prove nothing: a child is the
 * webhook's only under a name it writes (the spec's `secret.name`, or the status's `secret`), or
 * holding a token whose anchor the status records (the Secret under an earlier name, during a
 * rename). The others are never read for a token, counted into what the request holds, or
 * returned: every answer leaves them out, and Metacontroller deletes them.
 */
export function writtenByWebhook(children: SecretObject[], parent: DpuServiceCredentialRequest): SecretObject[] {
  const namespace = parent.metadata?.namespace ?? '';
  const spec: unknown = parent.spec;
  const secret = isRecord(spec) && isRecord(spec.secret) ? spec.secret : undefined;
  const names = new Set<string>();
  if (typeof secret?.name === 'string') names.add(namespacedName(typeof secret.namespace === 'string' && secret.namespace ? secret.namespace : namespace, secret.name));
  if (typeof parent.status?.secret === 'string') names.add(parent.status.secret);
  let recordedAnchors: Set<string> | undefined;
  return children.filter((child) => {
    if (names.has(namespacedName(child.metadata?.namespace ?? namespace, child.metadata?.name ?? ''))) return true;
    // Read only for a child under another name (none, but during a rename).
    const record = readTokenRecord(child);
    const anchor = record && bindingOf(record.token).anchor;
    recordedAnchors ??= new Set(anchorsOf(parent.status).map((entry) => entry.anchor));
    return anchor !== undefined && recordedAnchors.has(anchor);
  });
}

/**
 * Observed children to return as they are, so that Metacontroller keeps them: without
 * the fields the API server and Metacontroller own.
 */
export function unchanged(observed: SecretObject[]): SecretObject[] {
  return observed.map(({ apiVersion, kind, metadata = {}, type, data }) => {
    const { 'metacontroller.k8s.io/last-applied-configuration': _lastApplied, ...annotations } = metadata.annotations ?? {};
    return {
      apiVersion: apiVersion ?? 'v1',
      kind: kind ?? 'Secret',
      metadata: { name: metadata.name, namespace: metadata.namespace, labels: metadata.labels, annotations },
      ...(type ? { type } : {}),
      ...(data ? { data } : {}),
    };
  });
}

export type HeldToken = IssuedToken & Pick<TokenRecord, 'expiresAt'>;

export const issuedToken = (record: TokenRecord): HeldToken =>
  ({ issuedAt: record.issuedAt, expiresAt: record.expiresAt, ...bindingOf(record.token) });

/** An observed child as a sync reads it: the Secret, and the token it holds. */
export interface ObservedSecret {
  secret: SecretObject;
  record?: TokenRecord;
  token?: HeldToken;
}

/**
 * The children this webhook wrote, each read once (decoding a Secret's kubeconfig and its token's
 * claims is most of this hook's own work on the reuse path), and which is which while
 * `spec.secret.name` may be changing: `current` is the one under the spec's name; `predecessors`
 * are the others that hold a token (the names it had before); `held` is the one whose token the
 * request holds now: current, else the first predecessor, else whatever single child there is.
 */
export interface Observed {
  all: SecretObject[];
  byName: ReadonlyMap<string, ObservedSecret>;
  current?: ObservedSecret;
  predecessors: ObservedSecret[];
  held?: ObservedSecret;
  /** Every child that holds a token. */
  withTokens: Required<ObservedSecret>[];
}

/** The children Metacontroller reports, as observe says; `secretName`: the spec's, absent when the spec is invalid. */
export function observe(children: SecretObject[], parent: DpuServiceCredentialRequest, secretName: string | undefined): Observed {
  const all = writtenByWebhook(children, parent);
  const read = all.map((secret): ObservedSecret => {
    const record = readTokenRecord(secret);
    return record ? { secret, record, token: issuedToken(record) } : { secret };
  });
  const byName = new Map<string, ObservedSecret>();
  for (const child of read) {
    const name = child.secret.metadata?.name;
    if (name && !byName.has(name)) byName.set(name, child);
  }
  const current = secretName === undefined ? undefined : byName.get(secretName);
  const withTokens = read.filter((child): child is Required<ObservedSecret> => child.token !== undefined);
  const predecessors = withTokens.filter((child) => child !== current);
  const held = current ?? predecessors[0] ?? read[0];
  return { all, byName, ...(current ? { current } : {}), predecessors, ...(held ? { held } : {}), withTokens };
}
