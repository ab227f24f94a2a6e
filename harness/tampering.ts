// What the holder of a leaked token may do where it may patch Secrets and ServiceAccounts
// (the target cluster's namespace of its ServiceAccount): strip the labels and owner the
// webhook wrote, so that a label check alone would no longer find what the webhook made.
// And the Events a test then looks for on the request.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { KubeRestClient } from '../server/kube/rest.js';
import { connectionOf } from './connection.js';
import { eventually } from './eventually.js';

/** Removes every label and owner reference of a Secret or ServiceAccount (a merge patch, as `kubectl label` or `edit` would do). */
export async function stripLabelsAndOwners(config: KubeConfig, resource: 'secrets' | 'serviceaccounts', namespace: string, name: string): Promise<void> {
  const client = new KubeRestClient(connectionOf(config), { timeoutMs: 10_000 });
  try {
    await client.request('PATCH', `/api/v1/namespaces/${namespace}/${resource}/${name}`,
      { metadata: { labels: null, ownerReferences: null } }, { contentType: 'application/merge-patch+json' });
  } finally {
    client.close();
  }
}

export interface RecordedEvent { reason: string; type: string; note: string; regarding: { name: string } }

/** The Events on the request `name`, once one of type/reason `wanted` (e.g. 'Warning/AnchorTampered') is among them. */
export function eventsOnceRecorded(host: KubeConfig, namespace: string, name: string, wanted: string): Promise<RecordedEvent[]> {
  return eventually(async () => {
    const list = await host.makeApiClient(CustomObjectsApi)
      .listNamespacedCustomObject({ group: 'events.k8s.io', version: 'v1', namespace, plural: 'events' }) as { items: RecordedEvent[] };
    const events = list.items.filter((event) => event.regarding.name === name);
    return events.some((event) => `${event.type}/${event.reason}` === wanted) && events;
  }, `an Event ${wanted} is recorded on ${namespace}/${name}`, { timeoutMs: 5_000, intervalMs: 100 });
}
