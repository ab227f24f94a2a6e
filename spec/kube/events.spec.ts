import { expect } from 'chai';
import { EventRecorder } from '../../server/kube/events.js';
import type { KubeRestClient } from '../../server/kube/rest.js';
import { silentLogger } from '../../server/log.js';

describe('EventRecorder rate limit', function () {
  it('lets a burst through, then one event per refill interval, per request', function () {
    let nowMs = 0;
    const recorder = new EventRecorder({} as KubeRestClient, silentLogger, { burst: 3, refillMs: 60_000 }, () => nowMs);
    expect([1, 2, 3, 4].map(() => recorder.allow('uid-a'))).to.deep.equal([true, true, true, false]);
    expect(recorder.allow('uid-b')).to.equal(true);
    nowMs = 59_999;
    expect(recorder.allow('uid-a')).to.equal(false);
    nowMs = 60_000;
    expect(recorder.allow('uid-a')).to.equal(true);
    expect(recorder.allow('uid-a')).to.equal(false);
    nowMs = 10 * 60_000;
    expect([1, 2, 3, 4].map(() => recorder.allow('uid-a'))).to.deep.equal([true, true, true, false]);
  });
});
