// Shared inputs for the pure-core tests.
import type { ValidSpec } from '../../server/credential/validate.js';
import type { TokenRecord } from '../../server/credential/token.js';

export const testCaPem = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

export function validSpec(overrides: Partial<ValidSpec> = {}): ValidSpec {
  return {
    request: { namespace: 'default', name: 'dpu-01-credential-request', uid: 'uid-1', generation: 1 },
    serviceAccount: { namespace: 'default', name: 'dpu-01-sa' },
    targetCluster: { namespace: 'default', name: 'dpu-cplane-tenant1' },
    type: 'kubeconfig',
    secret: { namespace: 'default', name: 'dpu-01-credential' },
    expirationSeconds: 3600,
    secretLabels: { dpuservice: 'dpu-01' },
    secretAnnotations: { team: 'a' },
    rotation: '',
    ...overrides,
  };
}

export function tokenRecord(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    token: 'header.payload.signature',
    issuedAt: new Date('2026-01-01T00:00:00Z'),
    expiresAt: new Date('2026-01-01T01:00:00Z'),
    serviceAccount: 'default/dpu-01-sa',
    serviceAccountUid: 'sa-uid',
    targetCluster: 'default/dpu-cplane-tenant1',
    targetClusterUid: 'cluster-uid',
    duration: '1h',
    rotation: '',
    ...overrides,
  };
}
