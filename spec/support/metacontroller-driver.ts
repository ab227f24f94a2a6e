// Plays Metacontroller's part for one CompositeController, against a real API server:
// the same hook request and response shapes (v2), children applied with owner
// references and the controller-uid label, status written through the status
// subresource with observedGeneration, the finalizer added and removed, and the
// resyncAfterSeconds of each answer recorded. It is a test driver, not Metacontroller:
// it runs one reconcile when asked, where Metacontroller runs them from informers.
import { ApiException, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import type { CustomizeResponse, SyncResponse } from '../../server/metacontroller.js';

export const parentApi = { group: 'svc.dpu.nvidia.com', version: 'v1alpha1', plural: 'dpuservicecredentialrequests' } as const;
const hookTimeoutMs = 10_000;
const syncResponseFields = new Set(['status', 'children', 'resyncAfterSeconds', 'finalized']);

interface HookCall {
  hook: 'customize' | 'sync' | 'finalize';
  statusCode: number;
  body: unknown;
}

export class HookFailedError extends Error {}

/** How Metacontroller reaches the hook: caBundle and authorization of the CompositeController. */
export interface HookClientOptions {
  caPem?: string;
  bearerToken?: string;
}

function post(baseUrl: string, path: string, body: unknown, client: HookClientOptions): Promise<{ statusCode: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) };
    if (client.bearerToken) headers.Authorization = `Bearer ${client.bearerToken}`;
    const send = baseUrl.startsWith('https:') ? httpsRequest : request;
    const req = send(`${baseUrl}${path}`, { method: 'POST', headers, timeout: hookTimeoutMs, ...(client.caPem ? { ca: client.caPem } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // left as text
        }
        resolve({ statusCode: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`hook ${path} timed out after ${hookTimeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ReconcileResult {
  response: SyncResponse;
  hook: 'sync' | 'finalize';
}

export class MetacontrollerDriver {
  readonly controllerName = 'dpuservicecredentialrequest-controller';
  readonly calls: HookCall[] = [];
  /** resyncAfterSeconds of the last answer per "namespace/name". */
  readonly resyncAfterSeconds = new Map<string, number>();
  /** The last sync or finalize request body sent, as JSON. */
  lastHookRequest = '';
  private readonly core: CoreV1Api;
  private readonly objects: CustomObjectsApi;

  constructor(host: KubeConfig, private readonly webhookUrl: string, private readonly client: HookClientOptions = {}) {
    this.core = host.makeApiClient(CoreV1Api);
    this.objects = host.makeApiClient(CustomObjectsApi);
  }

  get finalizer(): string {
    return `metacontroller.io/compositecontroller-${this.controllerName}`;
  }

  private controller() {
    return {
      apiVersion: 'metacontroller.k8s.io/v1alpha1',
      kind: 'CompositeController',
      metadata: { name: this.controllerName },
      spec: { parentResource: { apiVersion: 'svc.dpu.nvidia.com/v1alpha1', resource: 'dpuservicecredentialrequests' } },
    };
  }

  async readParent(namespace: string, name: string): Promise<DpuServiceCredentialRequest | undefined> {
    try {
      return await this.objects.getNamespacedCustomObject({ ...parentApi, namespace, name }) as DpuServiceCredentialRequest;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw error;
    }
  }

  private async hook(name: HookCall['hook'], body: unknown): Promise<unknown> {
    const answer = await post(this.webhookUrl, `/${name}`, body, this.client);
    this.calls.push({ hook: name, ...answer });
    // Metacontroller treats anything but 200 as a failed hook: nothing changes, it retries later.
    if (answer.statusCode !== 200) throw new HookFailedError(`${name} hook answered HTTP ${answer.statusCode}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  private async related(parent: DpuServiceCredentialRequest) {
    const customize = await this.hook('customize', { controller: this.controller(), parent }) as CustomizeResponse;
    const related: Record<string, Record<string, unknown>> = {};
    for (const rule of customize.relatedResources) {
      const [group, version] = rule.apiVersion.split('/');
      const kind = rule.resource === 'dpuclusters' ? 'DPUCluster' : rule.resource;
      const key = `${kind}.${rule.apiVersion}`;
      related[key] ??= {};
      for (const name of rule.names ?? []) {
        try {
          const object = await this.objects.getNamespacedCustomObject({
            group: group!, version: version!, plural: rule.resource, namespace: rule.namespace ?? parent.metadata!.namespace!, name,
          }) as { metadata: { namespace: string; name: string } };
          related[key]![`${object.metadata.namespace}/${object.metadata.name}`] = object;
        } catch (error) {
          if (!(error instanceof ApiException && error.code === 404)) throw error;
        }
      }
    }
    return related;
  }

  async children(parent: DpuServiceCredentialRequest): Promise<V1Secret[]> {
    const list = await this.core.listNamespacedSecret({ namespace: parent.metadata!.namespace!, labelSelector: `controller-uid=${parent.metadata!.uid}` });
    return list.items.filter((secret) => secret.metadata?.ownerReferences?.some((owner) => owner.uid === parent.metadata!.uid && owner.controller));
  }

  /** One reconcile of the request, as Metacontroller runs it: customize, then sync or finalize, then apply. */
  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    let parent = await this.readParent(namespace, name);
    if (!parent) throw new Error(`no request ${namespace}/${name}`);
    const finalizing = Boolean(parent.metadata?.deletionTimestamp);
    if (!finalizing && !parent.metadata?.finalizers?.includes(this.finalizer)) {
      parent.metadata!.finalizers = [...(parent.metadata!.finalizers ?? []), this.finalizer];
      parent = await this.objects.replaceNamespacedCustomObject({ ...parentApi, namespace, name, body: parent }) as DpuServiceCredentialRequest;
    }
    const observed = await this.children(parent);
    const request = {
      controller: this.controller(),
      parent,
      children: { 'Secret.v1': Object.fromEntries(observed.map((secret) => [`${secret.metadata!.namespace}/${secret.metadata!.name}`, secret])) },
      related: await this.related(parent),
      finalizing,
    };
    const hookName = finalizing ? 'finalize' : 'sync';
    this.lastHookRequest = JSON.stringify(request);
    const response = await this.hook(hookName, request) as SyncResponse;
    const unknownFields = Object.keys(response).filter((field) => !syncResponseFields.has(field));
    if (unknownFields.length > 0) throw new HookFailedError(`${hookName} response has unknown fields ${unknownFields.join(', ')}`);
    this.resyncAfterSeconds.set(`${namespace}/${name}`, response.resyncAfterSeconds);

    // The children are JSON from the wire; V1Secret describes the same shape.
    await this.applyChildren(parent, observed, (response.children ?? []) as V1Secret[]);
    if (finalizing) {
      if (response.finalized) {
        parent.metadata!.finalizers = (parent.metadata!.finalizers ?? []).filter((finalizer) => finalizer !== this.finalizer);
        await this.objects.replaceNamespacedCustomObject({ ...parentApi, namespace, name, body: parent });
      }
    } else {
      await this.writeStatus(namespace, name, response);
    }
    return { response, hook: hookName };
  }

  private async writeStatus(namespace: string, name: string, response: SyncResponse): Promise<void> {
    const current = await this.readParent(namespace, name);
    if (!current) return;
    const body = { ...current, status: { ...response.status, observedGeneration: current.metadata?.generation } };
    await this.objects.replaceNamespacedCustomObjectStatus({ ...parentApi, namespace, name, body });
  }

  private async applyChildren(parent: DpuServiceCredentialRequest, observed: V1Secret[], desired: V1Secret[]): Promise<void> {
    const namespace = parent.metadata!.namespace!;
    const ownerReference = {
      apiVersion: parent.apiVersion!, kind: parent.kind!, name: parent.metadata!.name!, uid: parent.metadata!.uid!,
      controller: true, blockOwnerDeletion: true,
    };
    for (const child of desired) {
      const name = child.metadata!.name!;
      const existing = observed.find((secret) => secret.metadata?.name === name);
      const body: V1Secret = {
        ...child,
        metadata: {
          ...child.metadata,
          namespace,
          labels: { ...child.metadata?.labels, 'controller-uid': parent.metadata!.uid! },
          ownerReferences: [ownerReference],
          ...(existing ? { resourceVersion: existing.metadata!.resourceVersion } : {}),
        },
      };
      if (existing) await this.core.replaceNamespacedSecret({ namespace, name, body });
      else await this.core.createNamespacedSecret({ namespace, body });
    }
    const desiredNames = new Set(desired.map((child) => child.metadata?.name));
    for (const stale of observed.filter((secret) => !desiredNames.has(secret.metadata?.name))) {
      await this.core.deleteNamespacedSecret({ namespace, name: stale.metadata!.name! });
    }
  }
}
