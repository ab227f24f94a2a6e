// A CompositeController's work queue (client-go util/workqueue, v0.36.3, as Metacontroller
// v4.17.2 builds it in composite/controller.go newParentController), on a clock the test
// moves. What matters to the webhook:
// - Add() of a key already queued does nothing: events for one parent merge into one sync.
// - AddAfter(): a key waits once; a second AddAfter keeps the earlier time (delaying_queue.go
//   insert), and a sync in the meantime does not cancel it. So a failing answer's 5 s requeue
//   still fires after a Ready sync that came sooner, while that Ready answer's own, later
//   resyncAfterSeconds is dropped; the extra sync schedules it again. (This is why a Pending
//   answer asks for no requeue: its Secret's event brings the next sync anyway.)
// - AddRateLimited(): per-key exponential backoff from 5 ms to 1000 s; Forget() after a
//   success resets it (DefaultTypedControllerRateLimiter's overall 10 qps bucket is not modelled).

const baseDelayMs = 5;
const maxDelayMs = 1_000_000;

export class WorkQueue {
  /** Keys ready to sync, in the order they became ready. */
  private readonly ready = new Set<string>();
  /** Keys waiting, with the time they become ready. */
  private readonly waiting = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  /** The earliest time in `waiting` (Infinity when none waits). */
  private earliestWait = Infinity;

  constructor(private readonly now: () => number) {}

  add(key: string): void {
    this.ready.add(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (delayMs <= 0) return this.add(key);
    const readyAt = this.now() + delayMs;
    const existing = this.waiting.get(key);
    if (existing === undefined || readyAt < existing) {
      this.waiting.set(key, readyAt);
      this.earliestWait = Math.min(this.earliestWait, readyAt);
    }
  }

  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.addAfter(key, Math.min(maxDelayMs, baseDelayMs * 2 ** failures));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** When `key` becomes ready again, if it waits. */
  waitingUntil(key: string): number | undefined {
    return this.waiting.get(key);
  }

  /** Takes `key` if it is ready (or its wait is over by `at`): a worker's Get() of that key. */
  take(key: string, at = this.now()): boolean {
    this.promote(at);
    return this.ready.delete(key);
  }

  /** Takes the next ready key, counting waits over by `at`; undefined when none is ready. */
  next(at = this.now()): string | undefined {
    this.promote(at);
    const [key] = this.ready;
    if (key !== undefined) this.ready.delete(key);
    return key;
  }

  /** How many keys are ready (or their wait over by `at`). */
  readyCount(at = this.now()): number {
    this.promote(at);
    return this.ready.size;
  }

  /**
   * The waiting loop: keys whose time has come join the ready ones (merging with a key already
   * there), earliest first. Nothing is sorted while the earliest wait is not over, so taking keys
   * stays cheap with thousands waiting (client-go keeps them in a heap).
   */
  private promote(at: number): void {
    if (at < this.earliestWait) return;
    for (const [key, readyAt] of [...this.waiting].sort(([, a], [, b]) => a - b)) {
      if (readyAt > at) break;
      this.waiting.delete(key);
      this.ready.add(key);
    }
    this.earliestWait = Infinity;
    for (const readyAt of this.waiting.values()) this.earliestWait = Math.min(this.earliestWait, readyAt);
  }
}
