// How Metacontroller v4.17.2 reads a 429's Retry-After (pkg/hooks/webhook.go, Call):
// time.Parse(time.RFC1123, v), else strconv.Atoi(v), else 0. The parent is then requeued
// with AddAfter(seconds), which adds at once, without backoff, when seconds <= 0. Go's
// parsers are stricter and looser than Date.parse in their own ways, so they are spelled
// out here (Go 1.26 src/time/format.go Parse, parseTimeZone; strconv.Atoi).

const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const months = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * time.Parse's zone for layout "MST": "UTC", or what parseTimeZone accepts. Any accepted
 * name gives offset 0 unless it names the local zone; Metacontroller's image runs in UTC, so
 * the wall clock read is the instant (Go ignores even GMT+3's offset for the instant: it only
 * labels the fabricated zone).
 */
function zoneLength(value: string): number | undefined {
  if (value.startsWith('UTC')) return 3;
  if (value.length < 3) return undefined;
  if (value.startsWith('ChST') || value.startsWith('MeST')) return 4;
  const signedOffset = (rest: string): number => {
    const match = /^[+-](\d+)/.exec(rest);
    return match && Number(match[1]) <= 23 ? match[0].length : 0;
  };
  if (value.startsWith('GMT')) return 3 + (value.length > 3 ? signedOffset(value.slice(3)) : 0);
  if (value[0] === '+' || value[0] === '-') return signedOffset(value) || undefined;
  const upper = /^[A-Z]{0,6}/.exec(value)![0].length;
  if (upper === 3) return 3;
  if (upper === 4 && (value[3] === 'T' || value.startsWith('WITA'))) return 4;
  if (upper === 5 && value[4] === 'T') return 5;
  return undefined;
}

/** time.Parse(time.RFC1123, value) as epoch milliseconds, or undefined where Go returns an error. */
export function parseRfc1123AsGo(value: string): number | undefined {
  // "Mon, 02 Jan 2006 15:04:05 MST": names case-insensitive; the day, minute and second two
  // digits, the hour one or two; a fraction after the seconds is accepted though the layout has
  // none; a space of the layout matches one or more (format.go skip).
  const match = /^([A-Za-z]{3}), +(\d{2}) +([A-Za-z]{3}) +(\d{4}) +(\d{1,2}):(\d{2}):(\d{2})([.,]\d+)? +(.*)$/.exec(value);
  if (!match) return undefined;
  const [, weekday, dayText, monthText, yearText, hourText, minuteText, secondText, fraction, zone] = match as unknown as string[];
  const month = months.indexOf(monthText!.toLowerCase());
  if (!weekdays.includes(weekday!.toLowerCase()) || month < 0) return undefined;
  if (zoneLength(zone!) !== zone!.length) return undefined;
  const [year, day, hour, minute, second] = [yearText, dayText, hourText, minuteText, secondText].map(Number) as [number, number, number, number, number];
  if (hour >= 24 || minute >= 60 || second >= 60) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return undefined;
  const at = new Date(0);
  at.setUTCFullYear(year, month, day);
  at.setUTCHours(hour, minute, second, 0);
  return at.getTime() + (fraction ? Number(`0.${fraction.slice(1)}`) * 1_000 : 0);
}

/** strconv.Atoi: an optional sign and decimal digits, nothing else; an error reads as 0 here. */
function atoiAsGo(value: string): number {
  return /^[+-]?\d+$/.test(value) ? Number(value) : 0;
}

/** The seconds Metacontroller waits before it syncs the parent again after a 429 (<= 0: at once). */
export function retryAfterSecondsAsGo(header: string | undefined, nowMs: number): number {
  const value = header ?? '';
  const at = parseRfc1123AsGo(value);
  return at === undefined ? atoiAsGo(value) : Math.ceil((at - nowMs) / 1_000);
}
