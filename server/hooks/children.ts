import type { SecretObject } from '../api.js';

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
