// Reading the webhook's output Secrets the way their users do.
import { ApiException, CoreV1Api, KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { readTokenRecord } from '../server/credential/token-record.js';
import type { SecretObject } from '../server/api.js';
import type { ControlPlane } from './control-plane.js';
import { tokenKubeConfig, whoAmI } from './kube-helpers.js';
import { eventually } from './eventually.js';

export const decode = (secret: V1Secret, key: string) => Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');

export async function readSecret(host: KubeConfig, name: string, namespace = 'default'): Promise<V1Secret | undefined> {
  try {
    return await host.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name });
  } catch (error) {
    if (error instanceof ApiException && error.code === 404) return undefined;
    throw error;
  }
}

/** The token a Secret of either type holds. */
export function tokenIn(secret: V1Secret): string {
  const token = readTokenRecord(secret as unknown as SecretObject)?.token;
  if (!token) throw new Error(`Secret ${secret.metadata?.name} holds no token`);
  return token;
}

/** A client configuration built the way a user of the Secret would: from the kubeconfig, or from the four tokenFile keys. */
export function clientConfigFrom(secret: V1Secret): KubeConfig {
  if (secret.data?.kubeconfig) {
    const config = new KubeConfig();
    config.loadFromString(decode(secret, 'kubeconfig'));
    return config;
  }
  const host = decode(secret, 'KUBERNETES_SERVICE_HOST');
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${decode(secret, 'KUBERNETES_SERVICE_PORT')}`;
  return tokenKubeConfig(server, decode(secret, 'KUBERNETES_CA_DATA'), decode(secret, 'TOKEN_FILE'));
}

export const authenticatesAs = (secret: V1Secret) => whoAmI(clientConfigFrom(secret));

/** Who a bare token is on a control plane, or the HTTP status that refused it. */
export const identityOn = (plane: ControlPlane, token: string): Promise<string | number | undefined> =>
  whoAmI(tokenKubeConfig(plane.server, plane.pki.caCertPem, token)).catch((error: { code?: number }) => error.code);

/**
 * The same, once a revoked token is refused: kube-apiserver caches a successful token
 * authentication for 10 s, so it may pass until then (waits up to 15 s).
 */
export async function identityAfterAuthCache(plane: ControlPlane, token: string): Promise<string | number | undefined> {
  let answer: string | number | undefined;
  // Past the wait, the last answer: the caller's assertion says what it was.
  await eventually(async () => (answer = await identityOn(plane, token)) === 401, 'the token is refused', { timeoutMs: 15_000, intervalMs: 500 })
    .catch(() => undefined);
  return answer;
}
