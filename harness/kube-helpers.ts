// Small client-side helpers for tests: who a credential authenticates as, and
// manifests applied the way `kubectl create -f` would.
import {
  ApiException, AuthenticationV1Api, KubeConfig, type KubernetesObject, type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import type { Condition, DpuServiceCredentialRequest } from '../server/api.js';
import { KubeRestClient } from '../server/kube/rest.js';
import { eventually } from './eventually.js';
import { connectionOf } from './connection.js';

export function tokenKubeConfig(server: string, caPem: string, token: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'target', server, caData: Buffer.from(caPem).toString('base64') }],
    users: [{ name: 'bearer', token }],
    contexts: [{ name: 'bearer', cluster: 'target', user: 'bearer' }],
    currentContext: 'bearer',
  });
  return config;
}

/** The username a kubeconfig authenticates as (SelfSubjectReview); throws ApiException 401 when it does not. */
export async function whoAmI(config: KubeConfig): Promise<string> {
  const review = await config.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  return review.status?.userInfo?.username ?? '';
}

/** The HTTP status of a failed call, or the error itself when it is not an API error. */
export async function apiErrorCode(call: Promise<unknown>): Promise<number> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

export async function readManifests(path: string): Promise<KubernetesObject[]> {
  return parseAllDocuments(await readFile(path, 'utf8'))
    .map((document) => document.toJS() as KubernetesObject | null)
    .filter((object): object is KubernetesObject => object !== null);
}

interface ApiResourceList {
  resources: { name: string; kind: string; namespaced: boolean }[];
}

/**
 * Creates the objects as `kubectl create -f` would, sending the manifests' JSON as it
 * is (client-node's typed serializer drops schema fields such as enum and
 * x-kubernetes-validations from CRDs). CRDs are awaited until Established.
 */
export async function createObjects(config: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const client = new KubeRestClient(connectionOf(config), { timeoutMs: 10_000 });
  try {
    for (const object of objects) {
      const apiVersion = object.apiVersion ?? '';
      const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      const discovery = await client.request<ApiResourceList>('GET', base);
      const resource = discovery.resources.find((candidate) => candidate.kind === object.kind && !candidate.name.includes('/'));
      if (!resource) throw new Error(`the API server has no ${object.kind} in ${apiVersion}`);
      const namespace = object.metadata?.namespace ?? 'default';
      await client.request('POST', resource.namespaced ? `${base}/namespaces/${namespace}/${resource.name}` : `${base}/${resource.name}`, object);
      if (object.kind === 'CustomResourceDefinition') await waitEstablished(client, object.metadata!.name!);
    }
  } finally {
    client.close();
  }
}

async function waitEstablished(client: KubeRestClient, name: string): Promise<void> {
  await eventually(async () => {
    const crd = await client.request<V1CustomResourceDefinition>('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
    return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  }, `CRD ${name} is Established`, { timeoutMs: 15_000 });
}

/** A request's condition of this type, as `kubectl get` shows it. */
export const condition = (request: DpuServiceCredentialRequest | undefined, type: string): Condition | undefined =>
  request?.status?.conditions?.find((c) => c.type === type);
