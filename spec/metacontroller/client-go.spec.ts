// The driver's stand-in for client-go's rate limiter: a token bucket that starts full.
import { expect } from 'chai';
import { TokenBucket } from '../../harness/metacontroller/client-go.js';

describe('the driver: client-go token bucket', () => {
  it('lets a burst through at once, then spaces calls 1/qps apart', () => {
    let now = 0;
    const bucket = new TokenBucket({ qps: 5, burst: 10 }, () => now);
    const waits = Array.from({ length: 12 }, () => bucket.reserve());
    expect(waits.slice(0, 10)).to.deep.equal(Array(10).fill(0));
    expect(waits[10]).to.be.closeTo(200, 1e-9);
    expect(waits[11]).to.be.closeTo(400, 1e-9);
  });

  it('refills at qps up to the burst, never beyond', () => {
    let now = 0;
    const bucket = new TokenBucket({ qps: 5, burst: 2 }, () => now);
    bucket.reserve();
    bucket.reserve();
    now = 10_000;
    expect([bucket.reserve(), bucket.reserve(), bucket.reserve()]).to.deep.equal([0, 0, 200]);
  });
});
