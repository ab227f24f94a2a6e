// Go duration strings as the CRD accepts them (`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`).

const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const durationPattern = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
const durationPart = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g;

// Every sync parses its CompositeController's timeout and its spec's duration, nearly always the
// same few strings: short ones are remembered (a bounded set, emptied when full).
const remembered = new Map<string, number | undefined>();
const rememberedMax = 256;
const rememberedMaxLength = 32;

/** Milliseconds of a Go duration string, or undefined when it is not one. */
export function parseDurationMs(text: string): number | undefined {
  if (remembered.has(text)) return remembered.get(text);
  const ms = parse(text);
  if (text.length <= rememberedMaxLength) {
    if (remembered.size >= rememberedMax) remembered.clear();
    remembered.set(text, ms);
  }
  return ms;
}

function parse(text: string): number | undefined {
  if (!durationPattern.test(text)) return undefined;
  let totalMs = 0;
  for (const [, amount, unit] of text.matchAll(durationPart)) {
    totalMs += Number(amount) * unitMs[unit as keyof typeof unitMs];
  }
  return Number.isFinite(totalMs) ? totalMs : undefined;
}
