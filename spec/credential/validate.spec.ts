import { expect } from 'chai';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { validateRequest } from '../../server/credential/validate.js';

function request(spec: unknown, overrides: Partial<DpuServiceCredentialRequest['metadata']> = {}): DpuServiceCredentialRequest {
  return {
    apiVersion: 'svc.dpu.nvidia.com/v1alpha1',
    kind: 'DPUServiceCredentialRequest',
    metadata: { name: 'dpu-01-credential-request', namespace: 'default', uid: 'uid-1', generation: 3, ...overrides },
    spec,
  };
}

const seedSpec = {
  serviceAccount: { name: 'dpu-01-sa', namespace: 'default' },
  duration: '1h',
  targetCluster: { name: 'dpu-cplane-tenant1', namespace: 'default' },
  type: 'kubeconfig',
  secret: { name: 'dpu-01-credential', namespace: 'default' },
  metadata: { labels: { dpuservice: 'dpu-01' } },
};

function problemsOf(spec: unknown, overrides = {}): string[] {
  const result = validateRequest(request(spec, overrides));
  return result.valid ? [] : result.problems;
}

describe('validateRequest', function () {
  it('accepts the seed example and resolves every reference', function () {
    const result = validateRequest(request(seedSpec, { annotations: { 'svc.dpu.nvidia.com/rotate': '2' } }));
    expect(result.valid).to.equal(true);
    if (!result.valid) return;
    expect(result.spec).to.deep.equal({
      request: { namespace: 'default', name: 'dpu-01-credential-request', uid: 'uid-1', generation: 3 },
      serviceAccount: { namespace: 'default', name: 'dpu-01-sa' },
      targetCluster: { namespace: 'default', name: 'dpu-cplane-tenant1' },
      type: 'kubeconfig',
      secret: { namespace: 'default', name: 'dpu-01-credential' },
      expirationSeconds: 3600,
      secretLabels: { dpuservice: 'dpu-01' },
      secretAnnotations: {},
      rotation: '2',
    });
  });

  it('fills omitted namespaces with the request namespace and omits the duration when unset', function () {
    const result = validateRequest(request({ serviceAccount: { name: 'sa' }, type: 'tokenFile', secret: { name: 's' } }, { namespace: 'team-a' }));
    expect(result.valid && result.spec.serviceAccount).to.deep.equal({ namespace: 'team-a', name: 'sa' });
    expect(result.valid && result.spec.secret).to.deep.equal({ namespace: 'team-a', name: 's' });
    expect(result.valid && result.spec.targetCluster).to.equal(undefined);
    expect(result.valid && result.spec.expirationSeconds).to.equal(undefined);
  });

  it('rejects a secret in another namespace, saying why', function () {
    const problems = problemsOf({ ...seedSpec, secret: { name: 's', namespace: 'other' } });
    expect(problems.join()).to.contain('spec.secret.namespace').and.contain('Metacontroller');
  });

  for (const [duration, message] of [
    ['9m59s', 'shorter than the TokenRequest minimum of 10m'],
    ['0s', 'shorter than'],
    ['1e3h', 'is not a duration'],
    ['2000000h', 'longer than the TokenRequest maximum'],
  ] as const) {
    it(`rejects duration ${duration}`, function () {
      expect(problemsOf({ ...seedSpec, duration }).join()).to.contain(message);
    });
  }

  it('accepts 10m and 100000h', function () {
    expect(problemsOf({ ...seedSpec, duration: '10m' })).to.deep.equal([]);
    expect(problemsOf({ ...seedSpec, duration: '100000h' })).to.deep.equal([]);
  });

  it('lists every problem of a wholly wrong spec', function () {
    const problems = problemsOf({ serviceAccount: 'sa', type: 'json', secret: { name: 'Bad_Name' }, duration: 5, metadata: { labels: { ok: 7 } } });
    expect(problems).to.have.length(5);
    expect(problems.join('\n')).to.contain('spec.serviceAccount').and.contain('spec.type').and.contain('spec.secret.name')
      .and.contain('spec.duration').and.contain('spec.metadata.labels');
  });

  it('rejects a missing spec and a request name longer than 63 characters', function () {
    expect(problemsOf(undefined)).to.deep.equal(['spec: required']);
    expect(problemsOf(seedSpec, { name: 'a'.repeat(64) }).join()).to.contain('metadata.name');
  });

  it('rejects a rotate value longer than 63 characters (it is copied into the Secret and every anchor entry)', function () {
    expect(problemsOf(seedSpec, { annotations: { 'svc.dpu.nvidia.com/rotate': 'x'.repeat(63) } })).to.deep.equal([]);
    expect(problemsOf(seedSpec, { annotations: { 'svc.dpu.nvidia.com/rotate': 'x'.repeat(64) } })).to.deep.equal([
      'metadata.annotations["svc.dpu.nvidia.com/rotate"]: at most 63 characters (a timestamp or a counter will do)',
    ]);
  });

  it('rejects the label controller-uid, which Metacontroller selects the Secret by, naming the key and why', function () {
    for (const value of ['uid-1', 'other-uid', '']) {
      const problems = problemsOf({ ...seedSpec, metadata: { labels: { dpuservice: 'dpu-01', 'controller-uid': value } } });
      expect(problems, value).to.deep.equal(['spec.metadata.labels: "controller-uid" is reserved: Metacontroller selects this request\'s Secret by it']);
    }
  });

  it('accepts labels that only resemble the selector label, and the managed label keys (the webhook overwrites those)', function () {
    const labels = {
      'example.com/controller-uid': 'x',
      'controller-uid-copy': 'x',
      'svc.dpu.nvidia.com/managed-by-controller': 'someone-else',
      'svc.dpu.nvidia.com/credential-request-name': 'other',
    };
    expect(problemsOf({ ...seedSpec, metadata: { labels } })).to.deep.equal([]);
  });

  it('rejects invalid label values and keys without echoing control characters', function () {
    const problems = problemsOf({ ...seedSpec, metadata: { labels: { 'bad key!': 'x', good: 'bad\nvalue' } } });
    expect(problems).to.have.length(2);
    expect(problems.join()).to.not.contain('\n');
  });
});
