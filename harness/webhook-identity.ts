// The webhook's own identity on a test API server, as deploy/ makes it: ServiceAccount
// dpu-credential-webhook in namespace dpu-credential-webhook, bound to the shipped ClusterRole
// (deploy/namespace.yaml, rbac.yaml). The admission policies webhook-identity.yaml and
// managed-labels.yaml key on this username: a webhook that calls its host cluster under them
// must call it as this account, not as the admin.
import { fileURLToPath } from 'node:url';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, KubeRestClient } from '../server/kube/rest.js';
import type { ControlPlane } from './control-plane.js';
import { connectionOf } from './connection.js';
import { readManifests, tokenKubeConfig, whoAmI } from './kube-helpers.js';

export const webhookAccount = { namespace: 'dpu-credential-webhook', name: 'dpu-credential-webhook' } as const;
export const webhookUser = `system:serviceaccount:${webhookAccount.namespace}:${webhookAccount.name}`;

const deploy = (path: string) => fileURLToPath(new URL(`../deploy/${path}`, import.meta.url));

/** Creates what is missing of the webhook's namespace, account and rights, and returns a kubeconfig authenticating as it (a token of a day). */
export async function webhookKubeConfig(plane: ControlPlane): Promise<KubeConfig> {
  const admin = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
  try {
    for (const object of [...await readManifests(deploy('namespace.yaml')), ...await readManifests(deploy('rbac.yaml'))]) {
      const [group, version] = object.apiVersion!.includes('/') ? object.apiVersion!.split('/') : ['', object.apiVersion!];
      const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
      const plural = `${object.kind!.toLowerCase()}s`;
      const path = object.metadata?.namespace ? `${base}/namespaces/${object.metadata.namespace}/${plural}` : `${base}/${plural}`;
      try {
        await admin.request('POST', path, object);
      } catch (error) {
        if (!(error instanceof KubeApiError && error.statusCode === 409)) throw error;
      }
    }
  } finally {
    admin.close();
  }
  return webhookTokenKubeConfig(plane);
}

/** A kubeconfig authenticating as the webhook's ServiceAccount, which must exist (a token of a day). */
export async function webhookTokenKubeConfig(plane: ControlPlane): Promise<KubeConfig> {
  const admin = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
  try {
    const { namespace, name } = webhookAccount;
    const minted = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 86_400 },
    });
    const config = tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.status.token);
    const user = await whoAmI(config);
    if (user !== webhookUser) throw new Error(`the webhook's token authenticates as ${user}`);
    return config;
  } finally {
    admin.close();
  }
}
