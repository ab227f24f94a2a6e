// A request, a clock, the fake clusters and what Metacontroller would write back: enough to
// drive the sync and finalize hooks through every phase in memory, in milliseconds.
import type { Condition, DpuServiceCredentialRequest, SecretObject } from '../../server/api.js';
import { mintReasons } from '../../server/credential/token.js';
import { reasons } from '../../server/credential/status.js';
import type { HookContext } from '../../server/hooks/context.js';
import { finalize } from '../../server/hooks/finalize.js';
import { outcomeReasons, type SyncOutcome } from '../../server/hooks/outcome.js';
import { sync } from '../../server/hooks/sync.js';
import { Deadline } from '../../server/kube/rest.js';
import { silentLogger } from '../../server/log.js';
import { dpuClusterRelatedKey, objectKey, secretChildKey, type SyncRequest } from '../../server/metacontroller.js';
import { FakeClusters } from './fake-clusters.js';

export const requestNamespace = 'tenant';

/** Every reason an outcome may give, from the typed tables: a reason outside them fails the test that sees it. */
export const knownReasons = new Set<string>([...Object.values(reasons), ...Object.values(outcomeReasons), ...Object.values(mintReasons)]);

export class World {
  nowMs = Date.parse('2026-03-01T00:00:00Z');
  readonly clusters = new FakeClusters(() => this.now());
  readonly context: HookContext = { clusters: this.clusters, now: () => this.now(), log: silentLogger };
  parent: DpuServiceCredentialRequest;
  /** The Secret children Metacontroller reports, by name. */
  children = new Map<string, SecretObject>();
  /**
   * Whether the request's related objects carry the DPUClusters: only a CompositeController of
   * 0.3.x or earlier asked for them (customize); the shipped one has no customize hook.
   */
  related = false;

  constructor(spec: Record<string, unknown> = {}) {
    this.parent = {
      apiVersion: 'svc.dpu.nvidia.com/v1alpha1',
      kind: 'DPUServiceCredentialRequest',
      metadata: { namespace: requestNamespace, name: 'req', uid: 'req-uid', generation: 1 },
      spec: { serviceAccount: { name: 'sa' }, type: 'kubeconfig', secret: { name: 'cred' }, duration: '1h', ...spec },
    };
  }

  now(): Date {
    return new Date(this.nowMs);
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }

  get spec(): Record<string, unknown> {
    return this.parent.spec as Record<string, unknown>;
  }

  setSpec(changes: Record<string, unknown>): void {
    this.parent = { ...this.parent, spec: { ...this.spec, ...changes }, metadata: { ...this.parent.metadata, generation: (this.parent.metadata?.generation ?? 0) + 1 } };
  }

  request(): SyncRequest {
    const related: Record<string, unknown> = {};
    if (this.related) for (const [key, cluster] of this.clusters.host.dpuClusters) related[key] = cluster;
    return {
      controller: {},
      parent: this.parent,
      children: { [secretChildKey]: Object.fromEntries([...this.children].map(([name, secret]) => [objectKey(requestNamespace, name), secret])) },
      related: { [dpuClusterRelatedKey]: related },
    } as SyncRequest;
  }

  async sync(): Promise<SyncOutcome> {
    const outcome = await sync(this.request(), this.context, new Deadline(Date.now() + 10_000));
    expectKnownReason(outcome);
    return outcome;
  }

  async finalize(): Promise<SyncOutcome> {
    const outcome = await finalize({ ...this.request(), finalizing: true }, this.context, new Deadline(Date.now() + 10_000));
    expectKnownReason(outcome);
    return outcome;
  }

  /**
   * What Metacontroller does with an answer: writes the status, and makes the children what it
   * returned, in the host cluster (owned by the request) and in what it reports next.
   */
  apply(outcome: SyncOutcome): void {
    this.parent = { ...this.parent, status: outcome.response.status };
    const owned = (outcome.response.children ?? []).map((secret) => ({
      ...secret, metadata: { ...secret.metadata, ownerReferences: [{ controller: true, uid: this.parent.metadata?.uid }] },
    }));
    this.children = new Map(owned.map((secret) => [secret.metadata.name ?? '', secret]));
    for (const key of [...this.clusters.host.secrets.keys()].filter((key) => key.startsWith(`${requestNamespace}/`))) this.clusters.host.secrets.delete(key);
    for (const [name, secret] of this.children) this.clusters.host.secrets.set(`${requestNamespace}/${name}`, secret);
  }

  /** A sync whose answer Metacontroller writes, and the sync after it that sees the Secret. */
  async settle(): Promise<SyncOutcome> {
    this.apply(await this.sync());
    const seen = await this.sync();
    this.apply(seen);
    return seen;
  }

  condition(outcome: SyncOutcome, type: 'Ready' | 'ServiceAccountReconciled' | 'SecretReconciled'): Condition | undefined {
    return outcome.response.status?.conditions?.find((condition) => condition.type === type);
  }
}

function expectKnownReason(outcome: SyncOutcome): void {
  if (!knownReasons.has(outcome.reason)) throw new Error(`the outcome's reason "${outcome.reason}" is in no typed table`);
  for (const condition of outcome.response.status?.conditions ?? []) {
    if (!knownReasons.has(condition.reason)) throw new Error(`the condition reason "${condition.reason}" is in no typed table`);
  }
}
