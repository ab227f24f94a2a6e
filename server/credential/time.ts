/** RFC 3339 in whole seconds, as metav1.Time serialises. */
export const rfc3339 = (date: Date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Seconds until `when`, rounded up so the next sync lands at or after it; at least 1. */
export function secondsUntil(when: Date, now: Date): number {
  return Math.max(1, Math.ceil((when.getTime() - now.getTime()) / 1_000));
}
