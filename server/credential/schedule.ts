// When a failing request is retried. (When a token is renewed is token.ts.)

export const minRetryAfterSeconds = 5;
export const maxRetryAfterSeconds = 300;

/** Seconds until `when`, rounded up so the next sync lands at or after it; at least 1. */
export function secondsUntil(when: Date, now: Date): number {
  return Math.max(1, Math.ceil((when.getTime() - now.getTime()) / 1_000));
}

/**
 * Retry delay for a failing request, from how long it has been failing (the failing
 * condition's lastTransitionTime): half the time failed so far, within [5 s, 5 min].
 * It grows about 1.5x per retry and needs no state beyond the status itself.
 */
export function retryAfterSeconds(failingSince: Date | undefined, now: Date): number {
  const failedForSeconds = failingSince ? Math.max(0, (now.getTime() - failingSince.getTime()) / 1_000) : 0;
  return Math.min(maxRetryAfterSeconds, Math.max(minRetryAfterSeconds, Math.round(failedForSeconds / 2)));
}

/**
 * When a token may be minted again after the one minted at `mintedAt` (its anchor's
 * creationTimestamp in the target) never showed in the Secret, while the request has been
 * failing for that since `failingSince`: the failing request's backoff (retryAfterSeconds)
 * counted from that mint, half the time failed so far at the next mint, within [5 s, 5 min]:
 * now - mintedAt >= clamp((now - since) / 2), that is now >= max(mintedAt + 5 s,
 * min(mintedAt + 5 min, 2 * mintedAt - since)). The gap between mints doubles while the failure
 * lasts. A failure said to begin after that mint (its reason changed since) counts from the mint.
 */
export function unobservedMintRetryAt(mintedAt: Date, failingSince: Date): Date {
  const minted = mintedAt.getTime();
  const since = Math.min(failingSince.getTime(), minted);
  return new Date(Math.max(minted + minRetryAfterSeconds * 1_000, Math.min(minted + maxRetryAfterSeconds * 1_000, 2 * minted - since)));
}
