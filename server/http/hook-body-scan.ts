// A streaming look at a hook body too large to keep: where its top-level fields lie (so the
// parent, which Metacontroller serializes before the children, can be parsed from the part
// kept) and how large each child is, without keeping any of it. Linear in the body's size,
// never backtracks, and its memory is fixed whatever the body holds (nesting included):
// strings are skipped with Buffer.indexOf, and only the first four levels are tracked.
import type { ChildSize } from '../credential/oversized-body.js';

/** A top-level field's value: where it starts and ends (exclusive) in the body, in bytes. */
export interface FieldExtent {
  start: number;
  end: number;
}


export interface BodyLayout {
  /** The top-level fields seen whole, first occurrence each; `duplicated` names those seen twice. */
  fields: Map<string, FieldExtent>;
  duplicated: Set<string>;
  /** `finalizing` as sent, when it was a literal true or false. */
  finalizing?: boolean;
  /** The largest children, largest first (at most `keepLargest`), and how many there were. */
  largestChildren: ChildSize[];
  childCount: number;
  bytes: number;
}

const quote = 0x22;
const backslash = 0x5c;
const isWhitespace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
/** Keys longer than this are cut (a Kubernetes "namespace/name" is at most 317 bytes). */
const maxKeyBytes = 512;

interface Frame {
  isObject: boolean;
  expectKey: boolean;
  key: string;
  /** Where the value under `key` (or the array element) began. */
  valueStart: number;
}

/**
 * Fed the body chunk by chunk. Depth 1 is the body's object: its keys are the hook request's
 * fields; depth 3 is inside `children` → "Kind.version", whose keys are the children.
 */
export class HookBodyScanner {
  private offset = 0;
  private depth = 0;
  /** Frames of depths 1 to 3 (index 0 is depth 1); deeper levels are only counted. */
  private readonly frames: Frame[] = [];
  private inString = false;
  private escaped = false;
  /** The key being read (depths 1 to 3, in key position), as raw JSON bytes without the quotes. */
  private keyBytes: number[] | undefined;
  /** A literal (number, true, false, null) at depth 1: its first bytes. */
  private literal: string | undefined;
  private readonly layout: BodyLayout = { fields: new Map(), duplicated: new Set(), largestChildren: [], childCount: 0, bytes: 0 };

  constructor(private readonly keepLargest = 5) {}

  write(chunk: Buffer): void {
    const length = chunk.length;
    // The next quote and backslash at or after the cursor: looked up again only once passed, so
    // each byte is searched once (no rescans of a long string).
    let nextQuote = -1;
    let nextBackslash = -1;
    let i = 0;
    while (i < length) {
      if (this.inString) {
        if (this.escaped) {
          this.keepKeyBytes(chunk, i, i + 1);
          this.escaped = false;
          i += 1;
          continue;
        }
        if (nextQuote < i) nextQuote = indexOrEnd(chunk, quote, i);
        if (nextBackslash < i) nextBackslash = indexOrEnd(chunk, backslash, i);
        if (nextBackslash < nextQuote) {
          this.keepKeyBytes(chunk, i, nextBackslash + 1);
          this.escaped = true;
          i = nextBackslash + 1;
        } else if (nextQuote < length) {
          this.keepKeyBytes(chunk, i, nextQuote);
          this.inString = false;
          i = nextQuote + 1;
          this.stringEnded(this.offset + i);
        } else {
          this.keepKeyBytes(chunk, i, length);
          i = length;
        }
        continue;
      }
      this.structural(chunk[i]!, this.offset + i);
      i += 1;
    }
    this.offset += length;
    this.layout.bytes = this.offset;
  }

  /** The layout once the body has ended. */
  end(): BodyLayout {
    if (this.literal !== undefined) this.literalEnded(this.offset);
    return this.layout;
  }

  private get top(): Frame | undefined {
    return this.depth >= 1 && this.depth <= 3 ? this.frames[this.depth - 1] : undefined;
  }

  private keepKeyBytes(chunk: Buffer, from: number, to: number): void {
    if (!this.keyBytes || this.keyBytes.length >= maxKeyBytes) return;
    for (let at = from; at < to && this.keyBytes.length < maxKeyBytes; at += 1) this.keyBytes.push(chunk[at]!);
  }

  private structural(byte: number, at: number): void {
    if (this.literal !== undefined) {
      if (byte === 0x2c || byte === 0x7d || byte === 0x5d || isWhitespace(byte)) this.literalEnded(at);
      else {
        if (this.literal.length < 8) this.literal += String.fromCharCode(byte);
        return;
      }
    }
    if (isWhitespace(byte)) return;
    const frame = this.top;
    switch (byte) {
      case quote:
        this.inString = true;
        this.keyBytes = frame?.isObject && frame.expectKey ? [] : undefined;
        if (!this.keyBytes) this.valueBegins(at);
        return;
      case 0x7b: // {
      case 0x5b: // [
        this.valueBegins(at);
        this.depth += 1;
        if (this.depth <= 3) this.frames[this.depth - 1] = { isObject: byte === 0x7b, expectKey: byte === 0x7b, key: '', valueStart: -1 };
        return;
      case 0x7d: // }
      case 0x5d: // ]
        if (this.depth > 0) this.depth -= 1;
        this.valueEnded(at + 1);
        return;
      case 0x3a: // :
        return;
      case 0x2c: // ,
        if (frame?.isObject) frame.expectKey = true;
        return;
      default:
        this.valueBegins(at);
        if (this.depth === 1) this.literal = String.fromCharCode(byte);
    }
  }

  /** A value begins in the current frame (not a key). */
  private valueBegins(at: number): void {
    const frame = this.top;
    if (frame) frame.valueStart = at;
  }

  /** A value in the current frame has ended at `end` (exclusive). */
  private valueEnded(end: number): void {
    const frame = this.top;
    if (!frame || frame.valueStart < 0) return;
    const start = frame.valueStart;
    frame.valueStart = -1;
    if (this.depth === 1 && frame.isObject) this.fieldEnded(frame.key, { start, end });
    if (this.depth === 3 && frame.isObject && this.frames[0]!.isObject && this.frames[0]!.key === 'children') {
      this.childEnded({ group: this.frames[1]!.key, key: frame.key, bytes: end - start });
    }
  }

  private stringEnded(end: number): void {
    const frame = this.top;
    if (this.keyBytes) {
      if (frame) {
        frame.key = decodeKey(this.keyBytes);
        frame.expectKey = false;
      }
      this.keyBytes = undefined;
      return;
    }
    this.valueEnded(end);
  }

  private literalEnded(end: number): void {
    const literal = this.literal!;
    this.literal = undefined;
    const frame = this.top;
    if (this.depth === 1 && frame?.key === 'finalizing' && (literal === 'true' || literal === 'false')) {
      this.layout.finalizing = literal === 'true';
    }
    this.valueEnded(end);
  }

  private fieldEnded(key: string, extent: FieldExtent): void {
    if (this.layout.fields.has(key)) this.layout.duplicated.add(key);
    else this.layout.fields.set(key, extent);
  }

  private childEnded(child: ChildSize): void {
    this.layout.childCount += 1;
    const largest = this.layout.largestChildren;
    if (largest.length === this.keepLargest && largest[largest.length - 1]!.bytes >= child.bytes) return;
    let at = largest.findIndex((kept) => kept.bytes < child.bytes);
    if (at < 0) at = largest.length;
    largest.splice(at, 0, child);
    if (largest.length > this.keepLargest) largest.pop();
  }
}

function indexOrEnd(chunk: Buffer, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from);
  return at < 0 ? chunk.length : at;
}

/** A key as JSON spells it (escapes included), decoded; what cannot be decoded is kept as sent. */
function decodeKey(bytes: number[]): string {
  const raw = Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return raw;
  }
}
