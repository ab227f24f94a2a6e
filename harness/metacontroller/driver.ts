// Plays Metacontroller v4.17.2 for our shipped CompositeController, against a real host API
// server. It reads metacontroller/compositecontroller.yaml itself and follows it; what it
// models and what it does not is in MODEL.md beside this file. Each piece is named after the
// part of Metacontroller it stands for: the hook clients (pkg/hooks), the informer caches
// (pkg/dynamic/informer), the child manager (manage_children.go), the work queue (client-go's
// util/workqueue), the related rules (customize/manager.go) and, here, the controller's build
// (composite/metacontroller.go), the parent controller's sync (pkg/controller/composite/
// controller.go syncParentObject), its finalizer, its status writer and its resync.
import type { KubeConfig } from '@kubernetes/client-node';
import type { DpuServiceCredentialRequest, KubeObject } from '../../server/api.js';
import { KubeApiError, KubeRestClient } from '../../server/kube/rest.js';
import type { SyncResponse } from '../../server/metacontroller.js';
import { canonical, ChildManager, selectorLabel, type ApplyStrategy, type Child, type ChildEvent, type Parent } from './child-manager.js';
import { ThrottledClient, type ApiClient, type ClientGoLimits } from './client-go.js';
import { readCompositeController, shippedControllerPath, type CompositeController, type Hook } from './controller-spec.js';
import { HookClient, SecretValueMissing, TooManyRequestsError, type ClusterNetwork, type HookCallRecord } from './hook-client.js';
import { InformerCache, WatchedInformer, type Informer } from './informer-cache.js';
import { selectionOf, type RelatedRule } from './related.js';
import { WorkQueue } from './work-queue.js';
import { connectionOf } from '../connection.js';

export { HookError, TooManyRequestsError, type ClusterNetwork } from './hook-client.js';
export type { ApplyStrategy } from './child-manager.js';

export interface DriverOptions {
  /** The host cluster, as Metacontroller's own kubeconfig. */
  host: KubeConfig;
  /** Where service names resolve: stands in for cluster DNS and the Service. */
  network: ClusterNetwork;
  /** Metacontroller's --apply-strategy; the README asks for server-side-apply. */
  applyStrategy?: ApplyStrategy;
  /** Default: the shipped metacontroller/compositecontroller.yaml. */
  controllerPath?: string;
  /** --client-go-qps and --client-go-burst; absent: calls are counted, never throttled. */
  clientGo?: ClientGoLimits;
  /**
   * 'list' (the default): each sync reads its objects afresh, and a test can hold a cache to
   * make it lag. 'watch': informers fed by one list and a watch, as Metacontroller's are, so
   * reads cost the API server nothing (the benchmark's: thousands of parents).
   */
  informers?: 'list' | 'watch';
  /**
   * The driver's clock in epoch milliseconds, for the work queue's delays and the periodic
   * resync (default: Date.now). Tests pass the webhook's clock, so moving it makes both due.
   */
  now?: () => number;
  /**
   * 'v4.17.1' plays v4.16.0 to v4.17.1: under parentResource.ignoreStatusChanges their
   * updateParentObject() drops the informer's resync events (metacontroller#1252, fixed in
   * v4.17.2), so the periodic resync never reaches a parent. Default 'v4.17.2'.
   */
  version?: 'v4.17.1' | 'v4.17.2';
  /** How long start() retries a build that fails on something missing (default 30 s). */
  buildTimeoutMs?: number;
  /** Each failed build that start() retries (Metacontroller's "Cannot create new controller" event). */
  onBuildError?: (error: Error) => void;
}

export interface SyncResult {
  hook: 'sync' | 'finalize';
  response: SyncResponse;
}

/** Discovery does not list the resource (yet): the controller's build fails, and is retried. */
class ResourceNotServed extends Error {
  override name = 'ResourceNotServed';
}

/**
 * A sync that ends in an error: Metacontroller records a SyncError event and retries with
 * backoff. `result`: the hook's answer when the error came after it (writing the children
 * failed; the answer's status was written all the same).
 */
export class SyncError extends Error {
  override name = 'SyncError';

  constructor(message: string, readonly result?: SyncResult) {
    super(message);
  }
}

/** The garbage collector's finalizers (metav1.FinalizerDeleteDependents, FinalizerOrphanDependents). */
const gcFinalizers = ['foregroundDeletion', 'orphan'];

/** finalizer.Manager.ShouldFinalize(), for a controller with a finalize hook. */
const shouldFinalize = (parent: Parent, finalizer: string) => {
  const finalizers = parent.metadata.finalizers ?? [];
  return !finalizers.some((item) => gcFinalizers.includes(item)) && finalizers.includes(finalizer);
};

interface ApiResource {
  group: string;
  version: string;
  resource: string;
  kind: string;
  namespaced: boolean;
}

/**
 * How long a customize answer is kept (customize/manager.go newResponseCache: a zcache with a
 * default expiration of 20 minutes from Set; Get does not extend it).
 */
export const customizeCacheTtlMs = 20 * 60_000;

interface RelatedInformer {
  resource: ApiResource;
  cache: Informer;
  events: WatchedInformer;
}

/** More passes than this for one parent with nothing new from outside: the answers do not settle. */
const maxPassesPerReconcile = 8;

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') as [string, string] : ['', apiVersion];
  return { group, version };
}

/** The collection over all namespaces. */
const allNamespacesPathOf = (resource: ApiResource) =>
  `${resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`}/${resource.resource}`;

/** The collection in `namespace`; '' is every namespace (as listObjects() lists a rule without one). */
const collectionPathOf = (resource: ApiResource) => (namespace: string) =>
  `${resource.group ? `/apis/${resource.group}/${resource.version}` : `/api/${resource.version}`}${resource.namespaced && namespace ? `/namespaces/${namespace}` : ''}/${resource.resource}`;

/** "Kind.version" or "Kind.group/version": the keys of children and related maps. */
const groupKey = (resource: ApiResource) => `${resource.kind}.${resource.group ? `${resource.group}/` : ''}${resource.version}`;

type Discover = (apiVersion: string, resource: string) => Promise<ApiResource>;

/** resyncPeriodSeconds in milliseconds, at least 1 s (composite/controller.go Start), or undefined when unset. */
function resyncPeriodMs(controller: CompositeController): number | undefined {
  const seconds = controller.spec.resyncPeriodSeconds;
  return seconds === undefined ? undefined : Math.max(1_000, seconds * 1_000);
}

export class MetacontrollerDriver {
  /**
   * The controller's work queue, on the driver's clock: reconcile() and syncOnce() take their
   * parent from it; runDue() syncs what is due (answers' resyncAfterSeconds, 429s, the periodic
   * resync, failed syncs' backoff). Keys are "namespace/name".
   */
  readonly queue: WorkQueue;
  /** When the periodic resync (resyncPeriodSeconds) next sends every parent through updateParentObject(). */
  private nextPeriodicResyncAt: number | undefined;
  /** SyncError events (Metacontroller's Warning events on the parent). */
  readonly syncErrors: string[] = [];
  /** The last sync or finalize request body sent, as JSON. */
  lastHookRequest = '';
  /** The informer of the child resource (Secrets). */
  readonly secrets: Informer<Child>;
  /** The informer of the parent resource: a sync reads its parent here, so it can lag too. */
  readonly parents: Informer<Parent>;
  /**
   * Per related resource: the informer syncs read (`cache`) and the one whose events enqueue
   * parents (`events`: the same one under 'watch'; under 'list', a watch kept only for its events).
   */
  private readonly relatedInformers = new Map<string, RelatedInformer>();
  /** The informers being made: concurrent first syncs share one (getOrCreateRelatedInformer's GetOrCreate). */
  private readonly relatedInformersMade = new Map<string, Promise<RelatedInformer>>();
  /** The customize hook's answers per parent UID and generation, each kept 20 minutes from when it was answered. */
  private readonly customizeCache = new Map<string, { rules: RelatedRule[]; expiresAt: number }>();
  /** The related informers' event handler: one event at a time, in order, as client-go delivers them to a handler. */
  private relatedHandling: Promise<void> = Promise.resolve();
  /** Parents enqueued by related objects' events (each enqueue counted, merged or not). */
  relatedEnqueues = 0;

  private constructor(
    readonly controller: CompositeController,
    /** Every hook call, in order. */
    readonly calls: HookCallRecord[],
    /** What happened to children (created, updated, deleted, adopted, create skipped: already exists). */
    readonly childEvents: ChildEvent[],
    private readonly host: KubeRestClient,
    /** Metacontroller's own calls (not its informers'): throttled as client-go does, and counted. */
    readonly api: ThrottledClient,
    private readonly discover: Discover,
    private readonly parentResource: ApiResource,
    private readonly childResource: ApiResource,
    private readonly hooks: { customize?: HookClient; sync: HookClient; finalize?: HookClient },
    private readonly childManager: ChildManager,
    private readonly options: DriverOptions,
  ) {
    this.queue = new WorkQueue(this.now);
    const periodMs = resyncPeriodMs(controller);
    if (periodMs !== undefined) this.nextPeriodicResyncAt = this.now() + periodMs;
    this.secrets = this.informerFor<Child>(childResource);
    this.parents = this.informerFor<Parent>(parentResource);
    api.onResult = (method, result) => this.expectWritten(method, result);
  }

  private informerFor<T extends KubeObject>(resource: ApiResource): Informer<T> {
    return this.options.informers === 'watch'
      ? new WatchedInformer<T>(this.host, allNamespacesPathOf(resource), selectorLabel)
      : new InformerCache<T>(this.host, collectionPathOf(resource));
  }

  /** Watched informers: the next sync waits until the watch has brought what this write made. */
  private expectWritten(method: string, result: unknown): void {
    if (method === 'GET' || method === 'DELETE' || this.options.informers !== 'watch') return;
    const written = result as Child;
    const informer = written.kind === this.childResource.kind ? this.secrets : written.kind === this.parentResource.kind ? this.parents : undefined;
    if (informer instanceof WatchedInformer) informer.expect(written);
  }

  /** Watched informers only: every write of this driver has come back through the watches. */
  private async informersSettled(): Promise<void> {
    for (const informer of [this.parents, this.secrets]) {
      if (informer instanceof WatchedInformer) await informer.settled();
    }
  }

  private get now(): () => number {
    return this.options.now ?? Date.now;
  }

  get finalizer(): string {
    return `metacontroller.io/compositecontroller-${this.controller.metadata.name}`;
  }

  /**
   * Starts the controller as Metacontroller does: the build (discovery, the parent CRD, the
   * hooks' Secrets, read now and only now) is retried with backoff while what it reads is
   * missing, so a driver started before the hook-token Secret exists starts once it does
   * (composite/metacontroller.go Reconcile: an error requeues the CompositeController with
   * controller-runtime's backoff, from 5 ms doubling). After `buildTimeoutMs` the last error is
   * thrown. A parent CRD without a status subresource is not retried (Metacontroller ignores
   * such a controller).
   */
  static async start(options: DriverOptions): Promise<MetacontrollerDriver> {
    const controller = await readCompositeController(options.controllerPath ?? shippedControllerPath);
    const host = new KubeRestClient(connectionOf(options.host), { timeoutMs: 10_000 });
    const giveUpAt = Date.now() + (options.buildTimeoutMs ?? 30_000);
    for (let failures = 0; ; failures++) {
      try {
        return await MetacontrollerDriver.build(controller, host, options);
      } catch (error) {
        const retried = error instanceof KubeApiError || error instanceof SecretValueMissing || error instanceof ResourceNotServed;
        if (!retried || Date.now() >= giveUpAt) {
          host.close();
          throw error;
        }
        options.onBuildError?.(error);
        // The requeue's delay itself (the rate limiter's), not a wait for a condition.
        await new Promise((resolve) => setTimeout(resolve, Math.min(5 * 2 ** failures, Math.max(0, giveUpAt - Date.now()))));
      }
    }
  }

  /** newParentController(): one attempt. */
  private static async build(controller: CompositeController, host: KubeRestClient, options: DriverOptions): Promise<MetacontrollerDriver> {
    const spec = controller.spec;
    const discover: Discover = async (apiVersion, resource) => {
      const { group, version } = splitApiVersion(apiVersion);
      const list = await host.request<{ resources: { name: string; kind: string; namespaced: boolean }[] }>(
        'GET', group ? `/apis/${group}/${version}` : `/api/${version}`);
      const found = list.resources.find((candidate) => candidate.name === resource);
      if (!found) throw new ResourceNotServed(`the API server has no ${resource} in ${apiVersion}`);
      return { group, version, resource, kind: found.kind, namespaced: found.namespaced };
    };
    const parentResource = await discover(spec.parentResource.apiVersion, spec.parentResource.resource);
    await requireStatusSubresource(host, parentResource);
    if (spec.childResources.length !== 1) throw new Error('the driver models one child resource');
    const childSpec = spec.childResources[0]!;
    const childResource = await discover(childSpec.apiVersion, childSpec.resource);

    const calls: HookCallRecord[] = [];
    const build = (name: string, hook: Hook | undefined) =>
      hook ? HookClient.build(name, hook, spec.endpointConfigs, host, options.network, (call) => calls.push(call)) : Promise.resolve(undefined);
    const built = await Promise.allSettled([
      build('customize', spec.hooks.customize), build('sync', spec.hooks.sync), build('finalize', spec.hooks.finalize),
    ]);
    const failed = built.find((result) => result.status === 'rejected');
    const [customize, sync, finalize] = built.map((result) => result.status === 'fulfilled' ? result.value : undefined);
    if (failed) {
      for (const client of [customize, sync, finalize]) client?.close();
      throw failed.reason;
    }
    if (!sync) throw new Error('the CompositeController has no sync hook');
    const childEvents: ChildEvent[] = [];
    const api = new ThrottledClient(host, options.clientGo);
    const childManager = new ChildManager(api, collectionPathOf(childResource), childResource.kind,
      options.applyStrategy ?? 'server-side-apply', childSpec.updateStrategy?.method ?? 'OnDelete', (event) => childEvents.push(event));
    return new MetacontrollerDriver(controller, calls, childEvents, host, api, discover, parentResource, childResource,
      { ...(customize ? { customize } : {}), sync, ...(finalize ? { finalize } : {}) }, childManager, options);
  }

  /**
   * A restart of Metacontroller (or a change to the CompositeController's spec): a new driver
   * that reads the manifest and the hooks' Secrets again. This one is closed.
   */
  async restart(): Promise<MetacontrollerDriver> {
    this.close();
    return MetacontrollerDriver.start(this.options);
  }

  /** How many related resources this driver follows (one informer each): none without a customize hook. */
  get relatedInformerCount(): number {
    return this.relatedInformers.size;
  }

  close(): void {
    for (const informer of [this.parents, this.secrets, ...[...this.relatedInformers.values()].flatMap(({ cache, events }) => [cache, events])]) {
      if (informer instanceof WatchedInformer) informer.close();
    }
    for (const hook of Object.values(this.hooks)) hook?.close();
    this.host.close();
  }

  private parentPath(namespace: string, name: string): string {
    return `${collectionPathOf(this.parentResource)(namespace)}/${name}`;
  }

  /** The parent as the API server has it now (the tests' read: not one of Metacontroller's calls). */
  async readParent(namespace: string, name: string): Promise<DpuServiceCredentialRequest | undefined> {
    return await this.getParent<DpuServiceCredentialRequest>(this.host, namespace, name);
  }

  private async getParent<T>(client: ApiClient, namespace: string, name: string): Promise<T | undefined> {
    try {
      return await client.request<T>('GET', this.parentPath(namespace, name));
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  /**
   * What Metacontroller's queue does for one parent enqueued now: sync, and sync again as long
   * as the previous sync's own writes (children, finalizer, and status unless
   * ignoreStatusChanges) enqueue it. Ends when a sync writes nothing that triggers another; an
   * answer that never settles is reported as a hot loop. Delayed requeues (resyncAfterSeconds,
   * a 429's Retry-After) stay in the queue for runDue(), unless already due: then they merge.
   */
  async reconcile(namespace: string, name: string): Promise<SyncResult> {
    const key = `${namespace}/${name}`;
    this.queue.add(key);
    let last: SyncResult | undefined;
    for (let pass = 1; pass <= maxPassesPerReconcile; pass++) {
      if (!this.queue.take(key)) {
        if (!last) throw new SyncError(`${namespace}/${name}: no sync ran`);
        return last;
      }
      last = await this.syncParent(namespace, name) ?? last;
    }
    throw new SyncError(`${namespace}/${name}: still changing after ${maxPassesPerReconcile} syncs (a hot loop)`);
  }

  /** Exactly one sync of the parent; what it enqueues stays in the queue. */
  async syncOnce(namespace: string, name: string): Promise<SyncResult> {
    this.queue.take(`${namespace}/${name}`);
    const result = await this.syncParent(namespace, name);
    if (!result) throw new SyncError(`${namespace}/${name}: no sync ran`);
    return result;
  }

  /**
   * What Metacontroller's workers have done by now on the driver's clock: the periodic resync
   * if a tick has passed, then every parent whose requeue is due, and the syncs those enqueue,
   * until nothing due by this call's start is left. Failed syncs are requeued with backoff (and
   * recorded in syncErrors), not thrown. Returns the key of every sync run, in order.
   */
  async runDue(): Promise<string[]> {
    const at = this.now();
    await this.relatedIdle();
    await this.periodicResync(at);
    const synced: string[] = [];
    for (let key = this.queue.next(at); key !== undefined; key = this.queue.next(at)) {
      if (synced.filter((done) => done === key).length >= maxPassesPerReconcile) {
        throw new SyncError(`${key}: still changing after ${maxPassesPerReconcile} syncs (a hot loop)`);
      }
      synced.push(key);
      const [namespace, name] = key.split('/') as [string, string];
      await this.syncParent(namespace, name).catch(() => undefined);
    }
    return synced;
  }

  /**
   * The parent informer's resync (dynamic/informer eventHandler.start: a ticker of
   * resyncPeriodSeconds, at least 1 s, from the controller's start): every cached parent goes
   * through updateParentObject(obj, obj), which from v4.17.2 on enqueues it even under
   * ignoreStatusChanges. A ticker keeps no backlog: however many ticks passed, one resync.
   */
  private async periodicResync(at: number): Promise<void> {
    const periodMs = resyncPeriodMs(this.controller);
    if (periodMs === undefined || this.nextPeriodicResyncAt === undefined || at < this.nextPeriodicResyncAt) return;
    this.nextPeriodicResyncAt += periodMs * (Math.floor((at - this.nextPeriodicResyncAt) / periodMs) + 1);
    if (this.controller.spec.parentResource.ignoreStatusChanges && this.options.version === 'v4.17.1') return;
    for (const parent of await this.parents.list('')) this.queue.add(`${parent.metadata.namespace}/${parent.metadata.name}`);
  }

  /**
   * processNextWorkItem(): one sync of the parent, requeued as Metacontroller requeues it: its
   * own writes' events at once, a 429 after Retry-After (at once when that is 0), any other
   * error with backoff and a SyncError event; success forgets the backoff.
   */
  private async syncParent(namespace: string, name: string): Promise<SyncResult | undefined> {
    const key = `${namespace}/${name}`;
    try {
      const { result, enqueued } = await this.syncParentObject(namespace, name);
      if (enqueued) this.queue.add(key);
      this.queue.forget(key);
      return result;
    } catch (error) {
      if (error instanceof TooManyRequestsError) {
        this.queue.addAfter(key, error.afterSeconds * 1_000);
      } else {
        this.syncErrors.push(`${namespace}/${name}: ${(error as Error).message}`);
        this.queue.addRateLimited(key);
      }
      throw error;
    }
  }

  private async syncParentObject(namespace: string, name: string): Promise<{ result?: SyncResult; enqueued: boolean }> {
    await this.informersSettled();
    let parent = await this.parents.get(namespace, name);
    if (!parent) return { enqueued: false };
    const deleting = Boolean(parent.metadata.deletionTimestamp);
    const finalizers = parent.metadata.finalizers ?? [];
    let enqueued = false;

    // finalizer.SyncObject(): added before anything else while the parent lives. The update
    // enqueues the parent again only where updateParentObject() lets a metadata change through.
    if (this.hooks.finalize && !deleting && !finalizers.includes(this.finalizer)) {
      const updated = await this.atomicUpdate(parent, (live) => live.metadata.finalizers?.includes(this.finalizer)
        ? undefined : { ...live, metadata: { ...live.metadata, finalizers: [...live.metadata.finalizers ?? [], this.finalizer] } });
      if (!updated) return { enqueued: false };
      parent = updated;
      if (!this.controller.spec.parentResource.ignoreStatusChanges) enqueued = true;
    }
    // No early return for a deleting parent without our finalizer: with no parentResource.labelSelector
    // (doNotMatchLabels() is false) syncParentObject() goes on, and shouldCallFinalizeHook() calls
    // finalize for as long as another finalizer keeps the parent, also after ours is gone.
    // updateParentObject() lets every update of a deleting parent through, even under ignoreStatusChanges.
    const writesEnqueue = deleting || !this.controller.spec.parentResource.ignoreStatusChanges;

    const finalizing = deleting && Boolean(this.hooks.finalize);
    const hook = finalizing ? this.hooks.finalize! : this.hooks.sync;
    const { request, observed } = await this.hookRequest(parent, finalizing);
    this.lastHookRequest = JSON.stringify(request);
    const response = await hook.call(request) as SyncResponse;
    if (response.resyncAfterSeconds > 0) this.queue.addAfter(`${namespace}/${name}`, response.resyncAfterSeconds * 1_000);
    const result: SyncResult = { hook: finalizing ? 'finalize' : 'sync', response };

    if (finalizing && response.finalized) {
      // RemoveFinalizer(): a live GET every time, a write only while ours is still there.
      let removed = false;
      const updated = await this.atomicUpdate(parent, (live) => {
        removed = live.metadata.finalizers?.includes(this.finalizer) ?? false;
        return removed ? { ...live, metadata: { ...live.metadata, finalizers: live.metadata.finalizers!.filter((f) => f !== this.finalizer) } } : undefined;
      });
      parent = updated ?? parent;
      if (updated && removed && writesEnqueue) enqueued = true;
    }
    const desired = structuredClone(response.children ?? []) as Child[];
    if (this.controller.spec.generateSelector) this.childManager.labelForSelector(parent, desired);
    // finalizer.ShouldFinalize(): a deleting parent's children are managed only while our finalizer is
    // on it and no GC finalizer is (foreground or orphan deletion: the garbage collector owns them then).
    const managesChildren = !deleting || (Boolean(this.hooks.finalize) && shouldFinalize(parent, this.finalizer));
    let childErrors: Error[] = [];
    if (managesChildren) {
      const managed = await this.childManager.manage(parent, observed, desired);
      if (managed.wrote) enqueued = true;
      childErrors = managed.errors;
    }
    // The status is written even when writing the children failed; the sync then returns the
    // error (manageErr) and is retried with backoff.
    if (await this.writeStatus(parent, response) && writesEnqueue) enqueued = true;
    if (childErrors.length > 0) {
      throw new SyncError(`can't reconcile children for ${parent.kind} ${namespace}/${name}: ${childErrors.map((error) => error.message).join('; ')}`, result);
    }
    return { result, enqueued };
  }

  /** The children claimed and the body a sync (or finalize) of `parent` sends, from the caches. */
  private async hookRequest(parent: Parent, finalizing: boolean) {
    // ListByOwnerUID and ListOrphans, narrowed to what the selector can claim: the controller-uid label.
    const candidates = await this.secrets.list(parent.metadata.namespace, [selectorLabel, parent.metadata.uid]);
    const observed = await this.childManager.claim(parent, candidates);
    const request = {
      controller: this.controller,
      parent,
      children: { [groupKey(this.childResource)]: Object.fromEntries(observed.map((child) => [`${child.metadata.namespace}/${child.metadata.name}`, child])) },
      related: await this.relatedObjects(parent),
      finalizing,
    };
    return { request, observed };
  }

  /**
   * The sync request body Metacontroller would send for this parent now, without sending it:
   * what a resync storm (every parent synced at once after a restart) is made of.
   */
  async syncRequestBody(namespace: string, name: string): Promise<string | undefined> {
    const parent = await this.parents.get(namespace, name);
    return parent ? JSON.stringify((await this.hookRequest(parent, false)).request) : undefined;
  }

  /**
   * ResourceClient.AtomicUpdate(): read the live parent, change it, write it back; again on a
   * conflict. `change` answers undefined when there is nothing to do. Undefined when the
   * parent is gone or was replaced (another UID).
   */
  private async atomicUpdate(parent: Parent, change: (live: Parent) => Parent | undefined): Promise<Parent | undefined> {
    const path = this.parentPath(parent.metadata.namespace, parent.metadata.name);
    for (let attempt = 1; ; attempt++) {
      const live = await this.liveParent(parent);
      if (!live) return undefined;
      const changed = change(live);
      if (!changed) return live;
      try {
        return await this.api.request<Parent>('PUT', path, changed);
      } catch (error) {
        // retry.DefaultBackoff: 4 steps from 10 ms.
        if (!(error instanceof KubeApiError && error.statusCode === 409) || attempt >= 4) throw error;
        await new Promise((resolve) => setTimeout(resolve, 10 * 5 ** (attempt - 1)));
      }
    }
  }

  /** The parent read from the API server with Metacontroller's client, or undefined when gone or replaced. */
  private async liveParent(parent: Parent): Promise<Parent | undefined> {
    const live = await this.getParent<Parent>(this.api, parent.metadata.namespace, parent.metadata.name);
    return live?.metadata.uid === parent.metadata.uid ? live : undefined;
  }

  /**
   * GetRelatedObjects(): the customize answer (cached per UID and generation), then each
   * rule's objects from their informers, selected as determineSelectionType() says.
   */
  private async relatedObjects(parent: Parent): Promise<Record<string, Record<string, unknown>>> {
    if (!this.hooks.customize) return {};
    const rules = await this.customizeRules(parent);
    const related: Record<string, Record<string, unknown>> = {};
    for (const rule of rules) {
      const selection = selectionOf(rule);
      const informer = await this.relatedInformer(rule);
      const group = (related[groupKey(informer.resource)] ??= {});
      const { namespace, names, matches } = selection;
      // By name within a namespace: the same objects as listing it, at the cost of a read per name.
      const objects = names && namespace
        ? (await Promise.all(names.map((name) => informer.cache.get(namespace, name)))).filter((object) => object !== undefined)
        : (await informer.cache.list(namespace)).filter((object) => !names || names.includes(object.metadata!.name!));
      for (const object of objects.filter((candidate) => matches(candidate.metadata?.labels ?? {}))) {
        group[`${object.metadata!.namespace}/${object.metadata!.name}`] = object;
      }
    }
    return related;
  }

  /**
   * getCustomizeHookResponse(): the cached answer for the parent's UID and generation while it
   * is not older than 20 minutes (on the driver's clock), else the hook is called and its
   * answer kept another 20 minutes. Both syncs and related objects' events ask here.
   */
  private async customizeRules(parent: Parent): Promise<RelatedRule[]> {
    const cacheKey = `${parent.metadata.uid}/${parent.metadata.generation}`;
    const cached = this.customizeCache.get(cacheKey);
    // zcache's Get: an item is expired once now is after its expiration.
    if (cached && this.now() <= cached.expiresAt) return cached.rules;
    const rules = (await this.hooks.customize!.call({ controller: this.controller, parent }) as { relatedResources?: RelatedRule[] | null }).relatedResources ?? [];
    this.customizeCache.set(cacheKey, { rules, expiresAt: this.now() + customizeCacheTtlMs });
    return rules;
  }

  /**
   * getOrCreateRelatedInformer(): made at the first sync whose customize answer names the
   * resource, with the event handler (onRelatedAdd, onRelatedUpdate, onRelatedDelete) that
   * enqueues parents.
   */
  private async relatedInformer(rule: RelatedRule): Promise<RelatedInformer> {
    const key = `${rule.apiVersion}/${rule.resource}`;
    let made = this.relatedInformersMade.get(key);
    if (!made) {
      made = this.makeRelatedInformer(key, rule);
      this.relatedInformersMade.set(key, made);
      made.catch(() => this.relatedInformersMade.delete(key));
    }
    return await made;
  }

  private async makeRelatedInformer(key: string, rule: RelatedRule): Promise<RelatedInformer> {
    const resource = await this.discover(rule.apiVersion, rule.resource);
    // Metacontroller shares one informer per resource.
    const shared = resource.resource === this.childResource.resource && resource.group === this.childResource.group ? this.secrets : undefined;
    const cache = shared ?? this.informerFor(resource);
    const events: WatchedInformer = cache instanceof WatchedInformer && !shared ? cache : new WatchedInformer(this.host, allNamespacesPathOf(resource), selectorLabel);
    const informer = { resource, cache, events };
    this.relatedInformers.set(key, informer);
    events.onChange = (_type, current, previous) => {
      // onRelatedUpdate() asks for the parents interested in the old state or the new one.
      const objects = previous ? [previous, current] : [current];
      this.relatedHandling = this.relatedHandling.then(() => this.notifyRelatedParents(key, resource, objects)).catch(() => undefined);
    };
    return informer;
  }

  /**
   * notifyRelatedParents() and findRelatedParents(): every parent the parent informer holds
   * is asked for its customize answer (from the cache, or the hook when the answer expired:
   * so after 20 minutes one event calls customize for every parent, each answer then cached
   * again), and enqueued when one of its rules matches one of the objects (matchesRelatedRule,
   * v2 hooks). A parent whose customize call fails is skipped.
   */
  private async notifyRelatedParents(key: string, resource: ApiResource, objects: KubeObject[]): Promise<void> {
    for (const parent of await this.parents.list('')) {
      let rules: RelatedRule[];
      try {
        rules = await this.customizeRules(parent);
      } catch {
        continue;
      }
      if (rules.some((rule) => objects.some((object) => matchesRelatedRule(rule, key, resource, object)))) {
        this.relatedEnqueues++;
        this.queue.add(`${parent.metadata.namespace}/${parent.metadata.name}`);
      }
    }
  }

  /** Every related event that has arrived has been handled (its parents are in the queue). */
  async relatedIdle(): Promise<void> {
    for (let handling = this.relatedHandling; ; handling = this.relatedHandling) {
      await handling;
      if (handling === this.relatedHandling) return;
    }
  }

  /**
   * For tests: waits until the related informer of `object`'s kind has brought it at this
   * resourceVersion or later (or, with `gone`, its deletion), and its parents are enqueued.
   * A controller without a customize hook has no related informer at all (Metacontroller
   * makes them only for customize answers): no event of any object reaches it, nothing to wait for.
   */
  async relatedObserved(object: KubeObject, options: { gone?: boolean } = {}): Promise<void> {
    if (!this.hooks.customize) return;
    const found = [...this.relatedInformers.values()].find(({ resource }) => resource.kind === object.kind);
    if (!found) throw new Error(`no related informer for ${object.kind}: no customize answer named one yet`);
    const { namespace = '', name = '', resourceVersion = '0' } = object.metadata ?? {};
    await found.events.until((informer) => {
      const seen = informer.peek(namespace, name);
      return options.gone ? seen === undefined : seen !== undefined && BigInt(seen.metadata?.resourceVersion ?? '0') >= BigInt(resourceVersion);
    });
    await this.relatedIdle();
  }

  /**
   * The benchmark's workers: `workers` syncs at a time of every parent ready by `at` (and those
   * the syncs enqueue again), until the queue holds none and no related event is pending.
   * Returns how many syncs ran.
   */
  async drain(workers: number, at = this.now()): Promise<number> {
    let synced = 0;
    do {
      await this.relatedIdle();
      await Promise.all(Array.from({ length: workers }, async () => {
        for (let key = this.queue.next(at); key !== undefined; key = this.queue.next(at)) {
          synced++;
          const [namespace, name] = key.split('/') as [string, string];
          await this.syncParent(namespace, name).catch(() => undefined);
        }
      }));
      await this.relatedIdle();
    } while (this.queue.readyCount(at) > 0);
    return synced;
  }

  /**
   * updateParentStatus(): the answer's status plus observedGeneration replaces .status,
   * through the status subresource, read live and skipped when nothing changed.
   */
  private async writeStatus(parent: Parent, response: SyncResponse): Promise<boolean> {
    const live = await this.liveParent(parent);
    if (!live) return false;
    const status = { ...response.status, observedGeneration: live.metadata.generation };
    if (canonical((live as { status?: unknown }).status ?? {}) === canonical(status)) return false;
    try {
      await this.api.request('PUT', `${this.parentPath(parent.metadata.namespace, parent.metadata.name)}/status`, { ...live, status });
    } catch (error) {
      // NotFound and Conflict are swallowed: the parent is gone, or changed and will sync again.
      if (error instanceof KubeApiError && (error.statusCode === 404 || error.statusCode === 409)) return false;
      throw error;
    }
    return true;
  }
}

/**
 * matchesRelatedRule() for v2 hooks: the object is of the rule's resource, and within what
 * the rule selects (its labels, the rule's namespace when it names one, its names when it
 * lists some). An invalid rule matches nothing (the error is only logged).
 */
function matchesRelatedRule(rule: RelatedRule, key: string, resource: ApiResource, object: KubeObject): boolean {
  if (`${rule.apiVersion}/${rule.resource}` !== key || object.apiVersion !== rule.apiVersion || object.kind !== resource.kind) return false;
  let selection: ReturnType<typeof selectionOf>;
  try {
    selection = selectionOf(rule);
  } catch {
    return false;
  }
  const { namespace = '', name = '', labels = {} } = object.metadata ?? {};
  if (resource.namespaced && selection.namespace && namespace !== selection.namespace) return false;
  if (selection.names && !selection.names.includes(name)) return false;
  return selection.matches(labels);
}

/** Metacontroller never starts a controller whose parent CRD lacks the status subresource. */
async function requireStatusSubresource(host: KubeRestClient, parent: ApiResource): Promise<void> {
  const crd = await host.request<{ spec: { versions: { name: string; subresources?: { status?: unknown } }[] } }>(
    'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${parent.resource}.${parent.group}`);
  if (!crd.spec.versions.find((version) => version.name === parent.version)?.subresources?.status) {
    throw new Error(`CRD ${parent.resource}.${parent.group} does not have subresource 'Status' enabled`);
  }
}
