// Small client-side helpers for tests: who a credential authenticates as, and
// manifests applied the way `kubectl create -f` would.
import {
  ApiException, ApiextensionsV1Api, AuthenticationV1Api, KubeConfig, KubernetesObjectApi,
  type KubernetesObject, type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates the objects; CRDs are awaited until Established, so their resources can be used at once. */
export async function createObjects(config: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(config);
  const extensions = config.makeApiClient(ApiextensionsV1Api);
  for (const object of objects) {
    await client.create(object);
    if (object.kind === 'CustomResourceDefinition') {
      const name = object.metadata!.name!;
      for (let attempt = 0; ; attempt++) {
        const crd: V1CustomResourceDefinition = await extensions.readCustomResourceDefinition({ name });
        if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
        if (attempt > 300) throw new Error(`CRD ${name} not established`);
        await sleep(50);
      }
    }
  }
}
