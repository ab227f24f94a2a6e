// The Retry-After of a 429 to Metacontroller.

/**
 * Whole seconds, at least 1. Metacontroller reads a Retry-After only as an integer of seconds
 * or an RFC 1123 date; anything else ("1.5", "NaN") reads as 0, a retry at once and without
 * backoff: a hot loop against a webhook that asked it to wait.
 */
export function retryAfterHeader(seconds: number): string {
  return String(Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : 1);
}
