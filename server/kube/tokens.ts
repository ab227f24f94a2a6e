// The TokenRequest API.
import { KubeApiError, type ApiCaller } from './rest.js';
import type { Anchor } from './token-anchors.js';

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

/**
 * No audiences (the API server applies its --api-audiences), as DPF; bound to `anchor`
 * (a Secret in the same namespace), so that deleting the anchor revokes the token.
 */
export async function requestToken(client: ApiCaller, namespace: string, name: string, expirationSeconds: number | undefined,
  anchor: Anchor): Promise<MintedToken> {
  const response = await client.request<TokenRequestObject>(
    'POST',
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [],
        ...(expirationSeconds !== undefined ? { expirationSeconds } : {}),
        boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: anchor.name, uid: anchor.uid },
      },
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
  const uid = claimsOf(token)?.['kubernetes.io']?.serviceaccount?.uid;
  return typeof uid === 'string' ? uid : undefined;
}

/**
 * What a token says about itself, from one parse: its ID (the `jti` claim, Kubernetes 1.29+,
 * which the target's audit log records as the credential ID; it names the token without
 * granting anything) and the anchor Secret it is bound to (its `kubernetes.io.secret` claim:
 * name and UID, the UID being what the API server checks).
 */
export function bindingOf(token: string): { tokenId?: string; anchor?: string; anchorUid?: string } {
  const claims = claimsOf(token);
  const jti = claims?.jti;
  const name = claims?.['kubernetes.io']?.secret?.name;
  const uid = claims?.['kubernetes.io']?.secret?.uid;
  return {
    ...(typeof jti === 'string' && jti ? { tokenId: jti } : {}),
    ...(typeof name === 'string' && name ? { anchor: name } : {}),
    ...(typeof name === 'string' && name && typeof uid === 'string' && uid ? { anchorUid: uid } : {}),
  };
}

interface TokenClaims {
  jti?: unknown;
  'kubernetes.io'?: { serviceaccount?: { uid?: unknown }; secret?: { name?: unknown; uid?: unknown } };
}

function claimsOf(token: string): TokenClaims | undefined {
  try {
    const claims: unknown = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? claims as TokenClaims : undefined;
  } catch {
    return undefined;
  }
}
