import { expect } from 'chai';
import { answerMarginMs, defaultHookTimeoutMs, hookDeadline, hookTimeoutMs } from '../../server/hooks/deadline.js';

const controllerWith = (timeout: unknown) => ({
  apiVersion: 'metacontroller.k8s.io/v1alpha1', kind: 'CompositeController', metadata: { name: 'c' },
  spec: { hooks: { sync: { version: 'v2', webhook: { timeout, path: '/sync' } } } },
});

describe('the hook deadline', function () {
  it('reads the hook\'s webhook.timeout from the CompositeController in the request', function () {
    expect(hookTimeoutMs(controllerWith('6s'), 'sync')).to.equal(6_000);
    expect(hookTimeoutMs(controllerWith('1m'), 'sync')).to.equal(60_000);
  });

  it('falls back to Metacontroller\'s 10 s when the request has no controller, no such hook, or a timeout that is not a duration', function () {
    expect(hookTimeoutMs(undefined, 'sync')).to.equal(defaultHookTimeoutMs);
    expect(hookTimeoutMs(controllerWith('6s'), 'finalize')).to.equal(defaultHookTimeoutMs);
    expect(hookTimeoutMs(controllerWith('soon'), 'sync')).to.equal(defaultHookTimeoutMs);
    expect(hookTimeoutMs(controllerWith('0s'), 'sync')).to.equal(defaultHookTimeoutMs);
    expect(hookTimeoutMs(controllerWith(10), 'sync')).to.equal(defaultHookTimeoutMs);
  });

  it('ends a margin before the timeout: 1 s, or a tenth of longer timeouts', function () {
    expect(answerMarginMs(10_000)).to.equal(1_000);
    expect(answerMarginMs(60_000)).to.equal(6_000);
    expect(hookDeadline(controllerWith('6s'), 'sync', 1_000_000).atMs).to.equal(1_005_000);
    expect(hookDeadline(undefined, 'sync', 1_000_000).atMs).to.equal(1_009_000);
  });
});
