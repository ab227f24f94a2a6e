// The driver's work queue against client-go's (util/workqueue delaying_queue.go insert,
// queue.go Add, default_rate_limiters.go), on a clock the test moves.
import { expect } from 'chai';
import { WorkQueue } from '../../harness/metacontroller/work-queue.js';

describe('the driver: the controller\'s work queue', function () {
  let now: number;
  let queue: WorkQueue;
  beforeEach(function () {
    now = 1_000_000;
    queue = new WorkQueue(() => now);
  });

  it('keeps the earliest of several delayed requeues of a parent, whichever came last', function () {
    queue.addAfter('ns/a', 60_000);
    queue.addAfter('ns/a', 5_000);
    expect(queue.waitingUntil('ns/a')).to.equal(now + 5_000);
    queue.addAfter('ns/b', 5_000);
    queue.addAfter('ns/b', 60_000);
    expect(queue.waitingUntil('ns/b')).to.equal(now + 5_000);
  });

  it('does not cancel a delayed requeue when the parent syncs in the meantime: it fires later all the same', function () {
    queue.addAfter('ns/a', 5_000);
    queue.add('ns/a');
    expect(queue.take('ns/a')).to.equal(true);
    expect(queue.take('ns/a')).to.equal(false);
    now += 4_999;
    expect(queue.next()).to.equal(undefined);
    now += 1;
    expect(queue.next()).to.equal('ns/a');
    expect(queue.next()).to.equal(undefined);
  });

  it('merges the events of a parent not yet synced into one sync, a due requeue included', function () {
    queue.addAfter('ns/a', 1_000);
    queue.add('ns/a');
    queue.add('ns/a');
    now += 1_000;
    expect([queue.next(), queue.next()]).to.deep.equal(['ns/a', undefined]);
  });

  it('adds at once what is asked for after no time at all (a 429 whose Retry-After Go reads as 0)', function () {
    queue.addAfter('ns/a', 0);
    expect(queue.next()).to.equal('ns/a');
  });

  it('backs a failing parent off from 5 ms, doubling, and starts over once it succeeds', function () {
    const delays = [1, 2, 3].map(() => {
      queue.addRateLimited('ns/a');
      const delay = queue.waitingUntil('ns/a')! - now;
      now += delay;
      queue.next();
      return delay;
    });
    expect(delays).to.deep.equal([5, 10, 20]);
    queue.forget('ns/a');
    queue.addRateLimited('ns/a');
    expect(queue.waitingUntil('ns/a')! - now).to.equal(5);
  });
});
