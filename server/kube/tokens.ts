// The TokenRequest API.
import { KubeApiError, type KubeRestClient } from './rest.js';

export interface MintedToken {
  token: string;
  /** From the response, never from the request: the server may shorten the lifetime. */
  expiresAt: Date;
  expirationSeconds: number;
}

interface TokenRequestObject {
  spec?: { expirationSeconds?: number };
  status?: { token?: string; expirationTimestamp?: string };
}

/** No audiences (the API server applies its --api-audiences) and no bound object, as DPF. */
export async function requestToken(client: KubeRestClient, namespace: string, name: string, expirationSeconds?: number): Promise<MintedToken> {
  const response = await client.request<TokenRequestObject>(
    'POST',
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [], ...(expirationSeconds !== undefined ? { expirationSeconds } : {}) },
    },
  );
  const token = response?.status?.token;
  const expiresAt = new Date(response?.status?.expirationTimestamp ?? '');
  const seconds = response?.spec?.expirationSeconds;
  if (!token || Number.isNaN(expiresAt.getTime()) || typeof seconds !== 'number') {
    throw new KubeApiError(200, 'InvalidResponse', 'the TokenRequest response has no token, expirationTimestamp or expirationSeconds');
  }
  return { token, expiresAt, expirationSeconds: seconds };
}

/**
 * The ServiceAccount UID a token was issued for (its `kubernetes.io.serviceaccount.uid`
 * claim), or undefined when the token does not say. Read without verifying the signature:
 * it comes straight from the API server, and is only compared with the UID just checked.
 */
export function serviceAccountUidOf(token: string): string | undefined {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      'kubernetes.io'?: { serviceaccount?: { uid?: unknown } };
    };
    const uid = claims['kubernetes.io']?.serviceaccount?.uid;
    return typeof uid === 'string' ? uid : undefined;
  } catch {
    return undefined;
  }
}
