/** RFC 3339 in whole seconds, as metav1.Time serialises. */
// toISOString always ends in ".sssZ": the milliseconds are cut without a regular expression (several dates per sync).
export const rfc3339 = (date: Date) => `${date.toISOString().slice(0, -5)}Z`;

/** Seconds until `when`, rounded up so the next sync lands at or after it; at least 1. */
export function secondsUntil(when: Date, now: Date): number {
  return Math.max(1, Math.ceil((when.getTime() - now.getTime()) / 1_000));
}
