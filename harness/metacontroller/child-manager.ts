// Metacontroller's handling of children (pkg/controller/composite/controller.go claimChildren
// and the selector check, pkg/controller/common/manage_children.go): claim by selector and
// controller reference, refuse desired children that would not match the selector, then
// apply with one of the two apply strategies and delete observed children not desired.
import type { KubeObject } from '../../server/api.js';
import { createHash } from 'node:crypto';
import { KubeApiError } from '../../server/kube/rest.js';
import type { ApiClient } from './client-go.js';

export type ApplyStrategy = 'dynamic-apply' | 'server-side-apply';
export const lastAppliedAnnotation = 'metacontroller.k8s.io/last-applied-configuration';
export const selectorLabel = 'controller-uid';

interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

type Metadata = Omit<NonNullable<KubeObject['metadata']>, 'ownerReferences'> & { ownerReferences?: OwnerReference[] };

export interface Child {
  apiVersion?: string;
  kind?: string;
  metadata: Metadata;
  [field: string]: unknown;
}

export interface Parent extends KubeObject {
  metadata: Metadata & { uid: string; name: string; namespace: string };
}

/** What the driver tells a test about its writes (Metacontroller logs these). */
export interface ChildEvent {
  kind: 'created' | 'updated' | 'deleted' | 'adopted' | 'create-skipped-already-exists';
  name: string;
}

export const makeControllerRef = (parent: Parent): OwnerReference => ({
  apiVersion: parent.apiVersion!, kind: parent.kind!, name: parent.metadata.name, uid: parent.metadata.uid,
  controller: true, blockOwnerDeletion: true,
});

const controllerRefOf = (object: Child) => object.metadata.ownerReferences?.find((owner) => owner.controller);
const matchesSelector = (object: KubeObject, parent: Parent) => object.metadata?.labels?.[selectorLabel] === parent.metadata.uid;

/** Canonical JSON: equal objects give equal text whatever their key order (common.DeepEqual). */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What the last server-side apply of a child wrote (manage_children.go lastUpdate). */
interface LastUpdate {
  hash: string;
  resourceVersion: string;
  uid: string;
}

export class ChildManager {
  /** lastUpdatedCache: a child whose desired form and observed version match the last apply is not applied again. */
  private readonly lastUpdates = new Map<string, LastUpdate>();

  constructor(
    private readonly host: ApiClient,
    private readonly collectionPath: (namespace: string) => string,
    private readonly kind: string,
    private readonly strategy: ApplyStrategy,
    private readonly updateMethod: string,
    private readonly record: (event: ChildEvent) => void,
  ) {}

  private path(namespace: string, name: string) {
    return `${this.collectionPath(namespace)}/${name}`;
  }

  /**
   * ClaimObject() on candidates that match the selector: ours: a child; an orphan: adopted
   * (unless the parent is being deleted); owned by another controller: ignored.
   */
  async claim(parent: Parent, candidates: Child[]): Promise<Child[]> {
    const children: Child[] = [];
    for (const candidate of candidates.filter((object) => matchesSelector(object, parent))) {
      const owner = controllerRefOf(candidate);
      if (owner?.uid === parent.metadata.uid) {
        children.push(candidate);
      } else if (!owner && !parent.metadata.deletionTimestamp) {
        const ownerReferences = [...(candidate.metadata.ownerReferences ?? []), makeControllerRef(parent)];
        const adopted = await this.host.request<Child>('PATCH', this.path(candidate.metadata.namespace!, candidate.metadata.name!),
          { metadata: { ownerReferences, uid: candidate.metadata.uid } }, { contentType: 'application/merge-patch+json' });
        this.record({ kind: 'adopted', name: candidate.metadata.name! });
        children.push(adopted);
      }
    }
    return children;
  }

  /**
   * The invariant Metacontroller enforces before applying anything: with generateSelector,
   * controller-uid is added where absent, and a child whose labels do not match fails the sync.
   */
  labelForSelector(parent: Parent, desired: Child[]): void {
    for (const child of desired) {
      const labels = { ...child.metadata.labels };
      labels[selectorLabel] ??= parent.metadata.uid;
      child.metadata.labels = labels;
      if (!matchesSelector(child, parent)) {
        throw new Error(`labels on desired child ${this.kind} ${parent.metadata.namespace}/${child.metadata.name} don't match parent selector`);
      }
    }
  }

  /**
   * ManageChildren(): delete every observed child not desired, then apply every desired one.
   * A failed write is collected and the rest go on ("we don't block recovery on a failed
   * delete"); the errors come back with whether anything was written.
   */
  async manage(parent: Parent, observed: Child[], desired: Child[]): Promise<{ wrote: boolean; errors: Error[] }> {
    const namespace = parent.metadata.namespace;
    let wrote = false;
    const errors: Error[] = [];
    const desiredNames = new Set(desired.map((child) => child.metadata.name));
    // deleteChildren() skips a child already being deleted.
    for (const stale of observed.filter((child) => !desiredNames.has(child.metadata.name) && !child.metadata.deletionTimestamp)) {
      try {
        await this.host.request('DELETE', this.path(namespace, stale.metadata.name!),
          { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: stale.metadata.uid }, propagationPolicy: 'Background' });
        this.lastUpdates.delete(`${this.kind}/${namespace}/${stale.metadata.name}`);
        this.record({ kind: 'deleted', name: stale.metadata.name! });
        wrote = true;
      } catch (error) {
        if (!(error instanceof KubeApiError && error.statusCode === 404)) errors.push(new Error(`can't delete ${this.kind} ${namespace}/${stale.metadata.name}: ${(error as Error).message}`));
      }
    }
    for (const child of desired) {
      child.metadata.namespace ||= namespace;
      const current = observed.find((candidate) => candidate.metadata.name === child.metadata.name);
      if (current && this.updateMethod === 'OnDelete') continue;
      try {
        wrote = (this.strategy === 'server-side-apply'
          ? await this.serverSideApply(parent, child, current)
          : await this.dynamicApply(parent, child, current)) || wrote;
      } catch (error) {
        errors.push(new Error(`can't apply ${this.kind} ${child.metadata.namespace}/${child.metadata.name}: ${(error as Error).message}`));
      }
    }
    return { wrote, errors };
  }

  /** ServerSideApply.Apply(): force, field manager "metacontroller"; takes over an object it never observed. */
  private async serverSideApply(parent: Parent, child: Child, current: Child | undefined): Promise<boolean> {
    const { status: _status, ...body } = child;
    const { [lastAppliedAnnotation]: _lastApplied, ...annotations } = child.metadata.annotations ?? {};
    const payload = {
      ...body,
      metadata: {
        name: child.metadata.name, namespace: child.metadata.namespace, labels: child.metadata.labels, annotations,
        ownerReferences: [makeControllerRef(parent)],
      },
    };
    // The cache is checked only for an observed child; Secrets have no generation, so the resourceVersion decides.
    const cacheKey = `${this.kind}/${child.metadata.namespace}/${child.metadata.name}`;
    const hash = createHash('sha256').update(canonical(payload)).digest('hex');
    const last = this.lastUpdates.get(cacheKey);
    if (current && last && last.hash === hash && last.uid === current.metadata.uid && last.resourceVersion === current.metadata.resourceVersion) return false;
    const path = `${this.path(child.metadata.namespace!, child.metadata.name!)}?fieldManager=metacontroller&force=true`;
    const after = await this.host.request<Child>('PATCH', path, payload, { contentType: 'application/apply-patch+yaml' });
    this.lastUpdates.set(cacheKey, { hash, resourceVersion: after.metadata.resourceVersion!, uid: after.metadata.uid! });
    const changed = current?.metadata.resourceVersion !== after.metadata.resourceVersion;
    if (changed) this.record({ kind: current ? 'updated' : 'created', name: child.metadata.name! });
    return changed;
  }

  /** DynamicApply.Apply(): create, or update observed children keeping the applied object in an annotation. */
  private async dynamicApply(parent: Parent, child: Child, current: Child | undefined): Promise<boolean> {
    const applied = JSON.stringify(child);
    const desired: Child = {
      ...child,
      metadata: {
        ...child.metadata,
        annotations: { ...child.metadata.annotations, [lastAppliedAnnotation]: applied },
        ownerReferences: [makeControllerRef(parent)],
      },
    };
    if (!current) {
      try {
        await this.host.request('POST', this.collectionPath(child.metadata.namespace!), desired);
        this.record({ kind: 'created', name: child.metadata.name! });
        return true;
      } catch (error) {
        // "Failed to create child, child object already exists": logged, never adopted, retried each sync.
        if (error instanceof KubeApiError && error.statusCode === 409) {
          this.record({ kind: 'create-skipped-already-exists', name: child.metadata.name! });
          return false;
        }
        throw error;
      }
    }
    // The three-way merge, for the fields a Secret child has: what was applied before and is no
    // longer desired goes; what others added and was never applied stays.
    const before = JSON.parse(current.metadata.annotations?.[lastAppliedAnnotation] ?? '{}') as Child;
    const merged: Child = { ...current };
    for (const field of Object.keys(desired).filter((key) => key !== 'metadata')) merged[field] = desired[field];
    for (const field of Object.keys(before).filter((key) => key !== 'metadata' && !(key in desired))) delete merged[field];
    const mergeMap = (observedMap: Record<string, string> = {}, old: Record<string, string> = {}, wanted: Record<string, string> = {}) => {
      const result = { ...observedMap, ...wanted };
      for (const key of Object.keys(old)) if (!(key in wanted)) delete result[key];
      return result;
    };
    merged.metadata = {
      ...current.metadata,
      labels: mergeMap(current.metadata.labels, before.metadata?.labels, desired.metadata.labels),
      annotations: mergeMap(current.metadata.annotations, before.metadata?.annotations, desired.metadata.annotations),
      ownerReferences: current.metadata.ownerReferences,
    };
    if (canonical(merged) === canonical(current)) return false;
    try {
      await this.host.request('PUT', this.path(current.metadata.namespace!, current.metadata.name!), merged);
      this.record({ kind: 'updated', name: child.metadata.name! });
      return true;
    } catch (error) {
      // InPlace update: NotFound and Conflict are swallowed; the next sync tries again.
      if (error instanceof KubeApiError && (error.statusCode === 404 || error.statusCode === 409)) return false;
      throw error;
    }
  }
}
