// Which observed children the webhook wrote (issue 24: labels prove nothing, since
// Metacontroller adopts any Secret labelled with the request's controller-uid).
import { expect } from 'chai';
import type { DpuServiceCredentialRequest, SecretObject } from '../../server/api.js';
import { tokenAnnotations } from '../../server/credential/names.js';
import { writtenByWebhook } from '../../server/hooks/children.js';

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** A token shaped as a TokenRequest's, bound to the anchor Secret `anchor`. */
const tokenBoundTo = (anchor: string) => `${base64url({ alg: 'RS256' })}.${base64url({ jti: `id-${anchor}`, 'kubernetes.io': { secret: { name: anchor } } })}.sig`;
const secret = (name: string, anchor?: string): SecretObject => ({
  apiVersion: 'v1', kind: 'Secret',
  metadata: {
    name, namespace: 'team', labels: { 'controller-uid': 'uid-1' },
    annotations: { [tokenAnnotations.issuedAt]: '2026-01-01T00:00:00Z', [tokenAnnotations.expiresAt]: '2026-01-02T00:00:00Z' },
  },
  data: { TOKEN_FILE: Buffer.from(anchor ? tokenBoundTo(anchor) : 'not.a.jwt').toString('base64') },
});
const request = (spec: unknown, status: DpuServiceCredentialRequest['status']): DpuServiceCredentialRequest => ({
  apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: 'r', namespace: 'team', uid: 'uid-1' }, spec, ...(status ? { status } : {}),
});
const names = (children: SecretObject[]) => children.map((child) => child.metadata?.name);

describe('writtenByWebhook', function () {
  const anchors = [{ serviceAccount: 'team/sa', anchor: 'sa-anchor-old', rotation: '', expiresAt: '2026-01-02T00:00:00Z' }];

  it('keeps the Secret under the spec\'s name and the one the status records, and a Secret under another name only if its token\'s anchor is on record', function () {
    const children = [secret('cred'), secret('previous'), secret('renamed-from', 'sa-anchor-old'), secret('padding', 'sa-anchor-forged'), secret('copied-labels')];
    expect(names(writtenByWebhook(children, request({ secret: { name: 'cred' } }, { secret: 'team/previous', tokenAnchors: anchors } as never))))
      .to.deep.equal(['cred', 'previous', 'renamed-from']);
  });

  it('trusts nothing under another name when the spec names no Secret and the status records nothing', function () {
    expect(writtenByWebhook([secret('cred'), secret('padding', 'sa-anchor-old')], request('garbage', undefined))).to.deep.equal([]);
  });
});
