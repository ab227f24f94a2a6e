// The driver reads a 429's Retry-After exactly as Metacontroller does (pkg/hooks/webhook.go
// Call: time.Parse(time.RFC1123), else strconv.Atoi, else 0 = retry at once, no backoff).
import { expect } from 'chai';
import { retryAfterSecondsAsGo } from '../../harness/metacontroller/retry-after.js';

/**
 * Produced by running Metacontroller v4.17.2's parsing lines under Go 1.26 (time.Parse,
 * strconv.Atoi, math.Ceil) at 2026-12-04T22:00:00Z, machine zone UTC as in its image.
 */
const goAnswers: [string, number][] = [
  ['Fri,  04   Dec 2026  22:00:30   GMT', 30],
  [' Fri, 04 Dec 2026 22:00:30 GMT', 0],
  ['Fri,04 Dec 2026 22:00:30 GMT', 0],
  ['fri, 04 dec 2026 22:00:30 GMT', 30],
  ['FRI, 04 DEC 2026 22:00:30 GMT', 30],
  ['', 0],
  ['5', 5],
  ['0', 0],
  ['+7', 7],
  ['-3', -3],
  [' 5', 0],
  ['5 ', 0],
  ['5.0', 0],
  ['1e3', 0],
  ['0x10', 0],
  ['007', 7],
  ['5s', 0],
  ['١٢', 0],
  ['Fri, 04 Dec 2026 22:00:30 GMT', 30],
  ['fri, 04 dec 2026 22:00:30 gmt', 0],
  ['Fri, 04 Dec 2026 22:00:30 UTC', 30],
  ['Fri, 04 Dec 2026 22:00:30 PST', 30],
  ['Fri, 04 Dec 2026 22:00:30 GMT+3', 30],
  ['Fri, 04 Dec 2026 22:00:30 +03', 30],
  ['Fri, 04 Dec 2026 22:00:30 CEST', 30],
  ['Fri, 04 Dec 2026 22:00:30 ABCDE', 0],
  ['Fri, 04 Dec 2026 22:00:30 ChST', 30],
  ['Fri, 04 Dec 2026 22:00:30.5 GMT', 31],
  ['Fri, 04 Dec 2026 2:00:30 GMT', -71970],
  ['Fri, 4 Dec 2026 22:00:30 GMT', 0],
  ['Mon, 04 Dec 2026 22:00:30 GMT', 30],
  ['Fri, 04 Dec 2026 21:59:00 GMT', -60],
  ['Fri, 04 Dec 2026 22:00:30 -0700', 0],
  ['Friday, 04-Dec-26 22:00:30 GMT', 0],
  ['Fri Dec  4 22:00:30 2026', 0],
  ['2026-12-04T22:00:30Z', 0],
  ['Fri, 31 Nov 2026 22:00:30 GMT', 0],
  ['Fri, 04 Dec 2026 24:00:30 GMT', 0],
  ['Fri, 04 Dec 2026 22:60:30 GMT', 0],
  ['Fri, 04 Dec 2026 22:00:30 GMTX', 0],
  ['Fri, 04 Dec 2026 22:00:30 UTCX', 0],
  ['Fri, 04 Dec 2026 22:00:30 GM', 0],
];

describe('the driver: a 429\'s Retry-After as Metacontroller reads it', function () {
  it('gives the seconds Go gives for every form, integer seconds and RFC 1123 dates only, anything else 0 (at once, no backoff)', function () {
    const nowMs = Date.parse('2026-12-04T22:00:00Z');
    const answers = goAnswers.map(([header]) => [header, retryAfterSecondsAsGo(header, nowMs)]);
    expect(answers).to.deep.equal(goAnswers);
  });

  it('reads no header as 0', function () {
    expect(retryAfterSecondsAsGo(undefined, 0)).to.equal(0);
  });
});
