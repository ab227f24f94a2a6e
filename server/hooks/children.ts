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

/**
 * Which observed Secret is which while `spec.secret.name` may be changing: `current` is the
 * one under the spec's name; `predecessors` are the others that hold a token (the names it
 * had before); `held` is the one whose token the request holds now: current, else the first
 * predecessor, else whatever single child there is.
 */
export interface SecretLineage {
  current?: SecretObject;
  predecessors: SecretObject[];
  held?: SecretObject;
}

/**
 * What the observed children hold, each read once per sync: decoding a Secret's kubeconfig
 * and its token's claims is most of this hook's own work on the reuse path.
 */
export class ObservedSecrets {
  private readonly records: Map<SecretObject, TokenRecord | undefined>;
  private readonly issued = new Map<TokenRecord, HeldToken>();

  constructor(readonly all: SecretObject[]) {
    this.records = new Map(all.map((secret) => [secret, readTokenRecord(secret)]));
  }

  recordOf(secret: SecretObject | undefined): TokenRecord | undefined {
    return secret ? this.records.get(secret) : undefined;
  }

  issuedToken(record: TokenRecord): HeldToken {
    let issued = this.issued.get(record);
    if (!issued) this.issued.set(record, issued = issuedToken(record));
    return issued;
  }

  /** The token records the observed children hold. */
  tokenRecords(): TokenRecord[] {
    return [...this.records.values()].filter((record): record is TokenRecord => record !== undefined);
  }

  /** The tokens the observed children hold. */
  tokens(): IssuedToken[] {
    return this.tokenRecords().map((record) => this.issuedToken(record));
  }

  named(name: string): SecretObject | undefined {
    return this.all.find((secret) => secret.metadata?.name === name);
  }

  /** The one answer to "which Secret is current, which its predecessor"; `currentName` absent: the spec is invalid. */
  lineage(currentName: string | undefined): SecretLineage {
    const current = currentName === undefined ? undefined : this.named(currentName);
    const predecessors = this.all.filter((secret) => secret !== current && this.records.get(secret) !== undefined);
    return { ...(current ? { current } : {}), predecessors, held: current ?? predecessors[0] ?? this.all[0] };
  }
}
