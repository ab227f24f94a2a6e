// The one table from a failed call to an outcome: every kind of error in every phase, the
// reasons it gives (all in the typed table), and the 401 rule.
import { expect } from 'chai';
import { reasons, succeeded } from '../../server/credential/status.js';
import { errorOutcome, finalizeFailure, ServiceAccountReplacedError } from '../../server/hooks/error-outcomes.js';
import type { Phase } from '../../server/hooks/facts.js';
import { TargetClusterNotReadyError } from '../../server/kube/clusters.js';
import { InvalidKubeconfigError } from '../../server/kube/kubeconfig.js';
import { KubeApiError, KubeUnreachableError } from '../../server/kube/rest.js';
import { NamespaceMissingError, ServiceAccountInUseError } from '../../server/kube/service-accounts.js';

const phases: Phase[] = ['grants', 'secretOwnership', 'target', 'serviceAccount', 'token'];
const request = { namespace: 'tenant', name: 'req' };
const errors = {
  unreachable: new KubeUnreachableError('https://api:6443', 'ECONNREFUSED'),
  api500: new KubeApiError(500, 'InternalError', 'POST x: boom', 7),
  api401: new KubeApiError(401, 'Unauthorized', 'POST x: Unauthorized'),
  notReady: new TargetClusterNotReadyError('DPUCluster tenant/c has no spec.kubeconfig yet'),
  invalidKubeconfig: new InvalidKubeconfigError('not base64'),
  namespaceMissing: new NamespaceMissingError({ namespace: 'tenant', name: 'sa' }, request),
  inUse: new ServiceAccountInUseError({ namespace: 'tenant', name: 'sa' }),
  replaced: new ServiceAccountReplacedError('tenant/sa'),
};

/** The condition an outcome fails with (the other one, if not a success, waits: Pending). */
const failing = (phase: Phase, error: Error) => {
  const outcome = errorOutcome(error, phase, succeeded('service account tenant/sa exists'));
  return [outcome.serviceAccount, outcome.secret].find((result) => !result.ok && result.reason !== reasons.pending)!;
};

describe('errorOutcome (error kind × phase → condition)', function () {
  it('gives only reasons of the typed table, in every phase for every kind', function () {
    const known = new Set<string>(Object.values(reasons));
    for (const phase of phases) {
      for (const error of Object.values(errors)) {
        const outcome = errorOutcome(error, phase);
        expect(known.has(outcome.serviceAccount.reason) && known.has(outcome.secret.reason), `${phase} × ${error.name}`).to.equal(true);
      }
    }
  });

  it('calls the host unreachable in the phases that read the host, the target in those that call it', function () {
    for (const phase of ['grants', 'secretOwnership', 'target'] as const) expect(failing(phase, errors.unreachable).reason).to.equal(reasons.hostClusterUnreachable);
    for (const phase of ['serviceAccount', 'token'] as const) {
      expect(failing(phase, errors.unreachable)).to.include({ reason: reasons.targetClusterUnreachable });
      expect(failing(phase, errors.unreachable).message).to.include('the current Secret is kept');
    }
  });

  it('names the phase of an error answer: ServiceAccountReconcileFailed, TokenRequestFailed, or the host', function () {
    expect(failing('serviceAccount', errors.api500)).to.deep.include({ reason: reasons.serviceAccountReconcileFailed });
    expect(failing('token', errors.api500)).to.deep.include({ reason: reasons.tokenRequestFailed });
    expect(failing('token', errors.api500).message).to.equal('in the target cluster: POST x: boom (HTTP 500); retrying');
    expect(failing('target', errors.api500)).to.deep.include({ reason: reasons.hostClusterUnreachable });
    expect(failing('grants', errors.api500).message).to.equal('reading the host cluster: POST x: boom (HTTP 500); retrying');
  });

  it('puts the failure on the phase\'s condition and says what the other one waits for', function () {
    expect(errorOutcome(errors.unreachable, 'grants').secret.message).to.equal('waiting for the grant check');
    expect(errorOutcome(errors.unreachable, 'secretOwnership').serviceAccount.message).to.equal('waiting for the host cluster');
    expect(errorOutcome(errors.unreachable, 'target').secret.message).to.equal('waiting for the target cluster');
    expect(errorOutcome(errors.unreachable, 'serviceAccount').secret.message).to.equal('waiting for the ServiceAccount');
    // After the ServiceAccount exists, its condition is the caller's success.
    expect(errorOutcome(errors.api500, 'token', succeeded('it exists')).serviceAccount).to.deep.equal(succeeded('it exists'));
  });

  it('maps the cluster and ServiceAccount errors to their own reasons', function () {
    expect(failing('target', errors.notReady).reason).to.equal(reasons.targetClusterNotReady);
    expect(failing('target', errors.invalidKubeconfig).reason).to.equal(reasons.invalidTargetKubeconfig);
    expect(failing('serviceAccount', errors.namespaceMissing).reason).to.equal(reasons.namespaceNotFound);
    expect(failing('serviceAccount', errors.inUse)).to.deep.equal({ ok: false, reason: reasons.serviceAccountConflict,
      message: 'service account tenant/sa is already in use (it was not created for this request); choose another name' });
    const request = { namespace: 'tenant', name: 'req' };
    expect(failing('serviceAccount', new ServiceAccountInUseError({ namespace: 'default', name: 'sa' }, 'noConsent', request)).message).to.equal(
      'service account default/sa is already in use (it was not created for this request); choose another name; to hand it to this request, '
      + 'whoever may edit it annotates it: kubectl -n default annotate serviceaccount sa svc.dpu.nvidia.com/adopt-for-request=tenant/req');
    expect(failing('serviceAccount', new ServiceAccountInUseError({ namespace: 'default', name: 'sa' }, 'consentForAnother', request)).message)
      .to.contain('its svc.dpu.nvidia.com/adopt-for-request annotation names another request');
    expect(failing('serviceAccount', new ServiceAccountInUseError({ namespace: 'default', name: 'sa' }, 'labelledForAnother', request)).message)
      .to.equal('service account default/sa is already in use (it was created for another request); choose another name');
    expect(failing('serviceAccount', new ServiceAccountInUseError({ namespace: 'default', name: 'sa' }, 'labelsRefused', request)).message)
      .to.contain('was handed to this request, but the cluster refused the webhook its managed labels');
    expect(failing('token', errors.replaced).message)
      .to.equal('service account tenant/sa was replaced while its token was minted; the token was discarded, retrying');
  });

  it('forgets the target on a 401 from the target, and only then', function () {
    for (const phase of phases) {
      for (const [name, error] of Object.entries(errors)) {
        const expected = name === 'api401' && (phase === 'serviceAccount' || phase === 'token');
        expect(errorOutcome(error, phase).forgetTarget, `${phase} × ${name}`).to.equal(expected);
      }
    }
  });

  it('passes the server\'s Retry-After on, and the unreachable cause to the log', function () {
    expect(errorOutcome(errors.api500, 'token').retryAfterHint).to.equal(7);
    expect(errorOutcome(errors.unreachable, 'token')).to.not.have.property('retryAfterHint');
    expect(errorOutcome(errors.unreachable, 'token').detail).to.equal('cannot reach https://api:6443: ECONNREFUSED');
  });

  it('throws an error it does not know (a bug: HTTP 500)', function () {
    const bug = new TypeError('undefined is not a function');
    for (const phase of phases) expect(() => errorOutcome(bug, phase)).to.throw(bug);
  });
});

describe('finalizeFailure', function () {
  it('waits for a cluster that is down, and may give up on one that cannot be used', function () {
    expect(finalizeFailure(errors.unreachable).clusterUnusable).to.equal(false);
    expect(finalizeFailure(errors.api500).clusterUnusable).to.equal(false);
    expect(finalizeFailure(errors.notReady).clusterUnusable).to.equal(true);
    expect(finalizeFailure(errors.invalidKubeconfig).clusterUnusable).to.equal(true);
  });

  it('throws anything else', function () {
    expect(() => finalizeFailure(new TypeError('bug'))).to.throw(TypeError);
    expect(() => finalizeFailure(errors.namespaceMissing)).to.throw(NamespaceMissingError);
  });
});
