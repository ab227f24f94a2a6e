// Waiting for a condition that something else makes true (a poll, an informer, a process):
// the one polling helper of the tests. Where the code under test can say when it is done
// (a promise, an event, a proxy's arrival), wait on that instead.
import { setTimeout as delay } from 'node:timers/promises';

export interface EventuallyOptions {
  /** How long the condition gets before the wait fails; default 10 s. */
  timeoutMs?: number;
  /** The pause between two checks; default 50 ms. */
  intervalMs?: number;
}

/** A condition holds when it returns (or resolves to) anything but false, undefined or null. */
type Held<T> = Exclude<T, false | undefined | null>;

/**
 * Checks `condition` at once, then every `intervalMs`, until it holds, and returns what it
 * returned then. A check that throws has not held yet, unless it throws an assertion error
 * (chai's `expect` failing): that fails the wait at once. After `timeoutMs` without it holding,
 * fails with "timed out after … waiting until <message>", with the last error thrown, if any.
 */
export async function eventually<T>(condition: () => T | Promise<T>, message: string, options: EventuallyOptions = {}): Promise<Held<T>> {
  const { timeoutMs = 10_000, intervalMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false && value !== undefined && value !== null) return value as Held<T>;
      lastError = undefined;
    } catch (error) {
      if (error instanceof Error && error.name === 'AssertionError') throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const cause = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${message}${cause}`);
    }
    await delay(intervalMs);
  }
}
