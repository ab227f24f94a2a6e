// Our 429s must say their wait in a form Metacontroller reads: whole seconds.
import { expect } from 'chai';
import { retryAfterHeader } from '../../server/http/retry-after.js';
import { retryAfterSecondsAsGo } from '../../harness/metacontroller/retry-after.js';

describe('the Retry-After of our 429 answers', function () {
  it('is whole seconds, at least 1, so that Metacontroller waits instead of retrying at once without backoff', function () {
    const cases: [number, string][] = [[1, '1'], [30, '30'], [1.2, '2'], [0, '1'], [-4, '1'], [Number.NaN, '1'], [Number.POSITIVE_INFINITY, '1']];
    expect(cases.map(([seconds]) => [seconds, retryAfterHeader(seconds)])).to.deep.equal(cases);
    for (const [seconds, header] of cases) {
      expect(retryAfterSecondsAsGo(header, 0), `${seconds}`).to.equal(Number(header)).and.to.be.greaterThan(0);
    }
  });
});
