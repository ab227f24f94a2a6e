// The bootstrap's Secret calls: read, create (never over another), update with the
// resourceVersion read (never over a change made since). Verbs get, create and update only:
// the chart's bootstrap Role grants no more.
import type { SecretObject } from '../api.js';
import type { ObservedSecret } from '../bootstrap/plan.js';
import { isNotFound, KubeApiError, type ApiCaller } from './rest.js';

const secretsPath = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;

/** A Secret as read: decoded for the plan, and the object itself to update. */
export interface ReadSecret {
  observed: ObservedSecret;
  object: SecretObject;
}

/** Another writer got there first (409: AlreadyExists on create, Conflict on update): read again and plan again. */
export const isRaceLost = (error: unknown) => error instanceof KubeApiError && error.statusCode === 409;

export async function readSecret(client: ApiCaller, namespace: string, name: string): Promise<ReadSecret | undefined> {
  let object: SecretObject;
  try {
    object = await client.request<SecretObject>('GET', `${secretsPath(namespace)}/${encodeURIComponent(name)}`);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  return readOf(name, object);
}

function readOf(name: string, object: SecretObject): ReadSecret {
  const data = Object.fromEntries(Object.entries(object.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
  return { observed: { name, labels: { ...object.metadata?.labels }, annotations: { ...object.metadata?.annotations }, data }, object };
}

const encoded = (data: Record<string, string>) => Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));

/** Creates the Secret; one of that name made meanwhile fails with 409 (isRaceLost). */
export async function createSecret(client: ApiCaller, namespace: string, secret: {
  name: string; type: string; labels: Record<string, string>; annotations?: Record<string, string>; data: Record<string, string>;
}): Promise<void> {
  await client.request('POST', secretsPath(namespace), {
    apiVersion: 'v1', kind: 'Secret', type: secret.type,
    metadata: { name: secret.name, namespace, labels: secret.labels, ...(secret.annotations ? { annotations: secret.annotations } : {}) },
    data: encoded(secret.data),
  });
}

/**
 * Writes `read`'s object back with these annotations added and, when given, this data instead
 * of its own; the resourceVersion read makes a change made since fail with 409 (isRaceLost).
 * Returns the Secret as written, what a later update of it starts from.
 */
export async function updateSecret(client: ApiCaller, namespace: string, read: ReadSecret,
  change: { annotations?: Record<string, string>; data?: Record<string, string> }): Promise<ReadSecret> {
  const { object } = read;
  const metadata = object.metadata ?? {};
  const written = await client.request<SecretObject>('PUT', `${secretsPath(namespace)}/${encodeURIComponent(read.observed.name)}`, {
    ...object,
    metadata: { ...metadata, annotations: { ...metadata.annotations, ...change.annotations } },
    ...(change.data ? { data: encoded(change.data) } : {}),
  });
  return readOf(read.observed.name, written);
}
