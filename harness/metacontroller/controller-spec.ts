// The CompositeController as Metacontroller reads it (pkg/apis/metacontroller/v1alpha1/types.go,
// v4.17.2): only the fields the driver models, with Metacontroller's defaults. The driver
// reads our shipped metacontroller/compositecontroller.yaml through this; tests do not
// configure hooks themselves.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseDurationMs } from '../../server/credential/duration.js';

export const shippedControllerPath = fileURLToPath(new URL('../../metacontroller/compositecontroller.yaml', import.meta.url));

export interface ResourceKeyRef {
  name: string;
  namespace: string;
  key?: string;
}

export interface ConnectionSettings {
  caBundle?: { inline?: string; secretRef?: ResourceKeyRef; configMapRef?: ResourceKeyRef };
  clientTLS?: { secretRef: { name: string; namespace: string }; certKey?: string; privateKeyKey?: string };
  authorization?: { type?: string; secretRef: ResourceKeyRef };
  basicAuth?: unknown;
}

export interface Webhook extends ConnectionSettings {
  url?: string;
  path?: string;
  service?: { name: string; namespace: string; port?: number; protocol?: string };
  /** A Go duration ("10s"); default 10 s. */
  timeout?: string;
}

export interface Hook {
  version?: 'v1' | 'v2';
  webhook: Webhook;
}

export interface EndpointConfig extends ConnectionSettings {
  host: string;
}

export interface CompositeControllerSpec {
  generateSelector?: boolean;
  parentResource: { apiVersion: string; resource: string; ignoreStatusChanges?: boolean };
  childResources: { apiVersion: string; resource: string; updateStrategy?: { method?: string } }[];
  resyncPeriodSeconds?: number;
  endpointConfigs?: EndpointConfig[];
  hooks: { customize?: Hook; sync?: Hook; finalize?: Hook };
}

export interface CompositeController {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: CompositeControllerSpec;
}

/**
 * The fields of a CompositeController (json tags of pkg/apis/metacontroller/v1alpha1/types.go,
 * v4.17.2): what the API server accepts with fieldValidation=Strict under Metacontroller's
 * CRD. `true` marks a field kept whole (not modelled further).
 */
type Shape = { [field: string]: Shape | true } | [Shape];
const resourceKeyRef: Shape = { name: true, namespace: true, key: true };
const connection: Record<string, Shape | true> = {
  caBundle: { inline: true, secretRef: resourceKeyRef, configMapRef: resourceKeyRef },
  clientTLS: { secretRef: { name: true, namespace: true }, certKey: true, privateKeyKey: true },
  authorization: { type: true, secretRef: resourceKeyRef },
  basicAuth: true,
};
const hook: Shape = {
  version: true,
  webhook: {
    url: true, timeout: true, etag: true, path: true, responseUnMarshallMode: true,
    service: { name: true, namespace: true, port: true, protocol: true },
    ...connection,
  },
};
const compositeControllerShape: Shape = {
  apiVersion: true, kind: true, metadata: true,
  spec: {
    parentResource: { apiVersion: true, resource: true, revisionHistory: true, labelSelector: true, ignoreStatusChanges: true },
    childResources: [{ apiVersion: true, resource: true, updateStrategy: true }],
    hooks: { customize: hook, sync: hook, finalize: hook, preUpdateChild: hook, postUpdateChild: hook },
    endpointConfigs: [{ host: true, ...connection }],
    resyncPeriodSeconds: true,
    generateSelector: true,
  },
};

/** Paths of fields the shape does not have: the API server's "unknown field" under fieldValidation=Strict. */
export function unknownFields(value: unknown, shape: Shape = compositeControllerShape, path = ''): string[] {
  if (Array.isArray(shape)) return Array.isArray(value) ? value.flatMap((item, index) => unknownFields(item, shape[0], `${path}[${index}]`)) : [];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([field, inner]) => {
    const expected = shape[field];
    if (expected === undefined) return [`${path}${path ? '.' : ''}${field}`];
    return expected === true ? [] : unknownFields(inner, expected, `${path}${path ? '.' : ''}${field}`);
  });
}

export async function readCompositeController(path = shippedControllerPath): Promise<CompositeController> {
  const controller = parse(await readFile(path, 'utf8')) as CompositeController;
  if (controller.kind !== 'CompositeController') throw new Error(`${path} is not a CompositeController`);
  const unknown = unknownFields(controller);
  if (unknown.length > 0) throw new Error(`${path}: unknown field ${unknown.map((field) => `"${field}"`).join(', ')}`);
  return controller;
}

/** webhook.timeout as Metacontroller reads it (metav1.Duration; unset or <= 0: 10 s). */
export function timeoutMsOf(webhook: Webhook): number {
  if (!webhook.timeout) return 10_000;
  const timeoutMs = parseDurationMs(webhook.timeout);
  if (timeoutMs === undefined) throw new Error(`webhook.timeout ${webhook.timeout} is not a Go duration`);
  return timeoutMs > 0 ? timeoutMs : 10_000;
}

/** webhookURL() in pkg/hooks/webhook.go: `url` verbatim, else {protocol}://{name}.{namespace}:{port}{path}. */
export function webhookUrl(webhook: Webhook): string {
  if (webhook.url) return webhook.url;
  const service = webhook.service;
  if (!service || webhook.path === undefined) {
    throw new Error("invalid webhook config: must specify either a full 'url', or both 'service' and 'path'");
  }
  return `${service.protocol ?? 'http'}://${service.name}.${service.namespace}:${service.port ?? 80}${webhook.path}`;
}

/**
 * ResolveEndpointConfig() in pkg/hooks/endpoint_config.go: a webhook's own TLS and
 * authorization fields win whole; otherwise the first endpointConfigs entry whose host
 * matches the URL's host (with or without the scheme's default port).
 */
export function connectionSettingsFor(webhook: Webhook, endpointConfigs: EndpointConfig[] = []): ConnectionSettings | undefined {
  if (webhook.caBundle || webhook.clientTLS || webhook.authorization || webhook.basicAuth) return webhook;
  const url = new URL(webhookUrl(webhook));
  const defaultPort = url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '';
  // WHATWG URLs drop a default port; Go keeps what was written. Rebuild Go's u.Host.
  const explicitPort = /^[a-z]+:\/\/[^/]*:(\d+)/i.exec(webhookUrl(webhook))?.[1] ?? '';
  const urlHost = explicitPort ? `${url.hostname}:${explicitPort}` : url.hostname;
  const canonicalHost = explicitPort ? urlHost : `${url.hostname}:${defaultPort}`;
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  return endpointConfigs.find((config) => same(config.host, urlHost) || same(config.host, canonicalHost)
    || (explicitPort !== '' && explicitPort === defaultPort && same(config.host, url.hostname)));
}
