// Reading a hook's body: parsed whole when it fits MAX_BODY_BYTES; otherwise at most that
// much is kept and the rest is counted and looked through (hook-body-scan.ts), never kept, so
// that the parent, which Metacontroller sends before the children, can still be read and the
// grant decision and revocation still run (issue 24: a tenant's padded children must not be
// able to make every sync fail). A body cannot stream forever: server.ts's requestTimeout ends
// any request not received whole in time.
import type { IncomingMessage } from 'node:http';
import type { OversizedBody } from '../credential/oversized-body.js';
import { HookBodyScanner, type BodyLayout } from './hook-body-scan.js';

/** A body that is not JSON (HTTP 400). */
export class BodyNotJson extends Error {
  constructor() {
    super('the body is not valid JSON');
  }
}

/** A body over the limit that cannot be answered (HTTP 413); the message says why, when there is more to say. */
export class BodyTooLarge extends Error {
  constructor(why = '') {
    super(why);
  }
}

/** A body that could not be received (HTTP 400, or 415 for an encoding other than identity). */
export class BodyUnreadable extends Error {
  constructor(message: string, readonly status: 400 | 415) {
    super(message);
  }
}

/** A body over the limit: its first `limitBytes` bytes, and how it is laid out. */
export interface OversizedHookBody {
  prefix: Buffer;
  limitBytes: number;
  layout: BodyLayout;
}

export type HookBody = { fits: true; value: unknown } | { fits: false; oversized: OversizedHookBody };

/** A body as it arrives: kept up to the limit, and from there looked through from the start, never kept. */
class ReceivedBody {
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private scanner: HookBodyScanner | undefined;

  constructor(private readonly limitBytes: number) {}

  add(chunk: Buffer): void {
    if (this.scanner) {
      this.scanner.write(chunk);
      return;
    }
    if (this.keptBytes + chunk.length <= this.limitBytes) {
      this.kept.push(chunk);
      this.keptBytes += chunk.length;
      return;
    }
    // Over the limit from here: keep up to it, and look through everything from the start.
    this.kept.push(chunk.subarray(0, this.limitBytes - this.keptBytes));
    this.keptBytes = this.limitBytes;
    this.scanner = new HookBodyScanner();
    for (const part of this.kept) this.scanner.write(part);
    this.scanner.write(chunk.subarray(this.kept[this.kept.length - 1]!.length));
  }

  /** The part kept, and the layout of the whole when it was over the limit. */
  end(): { prefix: Buffer; layout?: BodyLayout } {
    // A body that fits and came in one chunk (most hook bodies fit one TLS record) is not copied again.
    const prefix = !this.scanner && this.kept.length === 1 ? this.kept[0]! : Buffer.concat(this.kept, this.keptBytes);
    return this.scanner ? { prefix, layout: this.scanner.end() } : { prefix };
  }
}

/** Receives the whole body, keeping at most `limitBytes` of it. */
export function readHookBody(req: IncomingMessage, limitBytes: number): Promise<HookBody> {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') return Promise.reject(new BodyUnreadable(`unsupported content encoding "${encoding}"`, 415));
  return new Promise((resolve, reject) => {
    const received = new ReceivedBody(limitBytes);
    const onData = (chunk: Buffer) => received.add(chunk);
    const onEnd = () => {
      cleanup();
      const { prefix, layout } = received.end();
      if (layout) {
        resolve({ fits: false, oversized: { prefix, limitBytes, layout } });
        return;
      }
      const text = prefix.toString('utf8');
      try {
        // As express.json did: an empty body is an empty object.
        resolve({ fits: true, value: text.trim() === '' ? {} : JSON.parse(text) as unknown });
      } catch {
        reject(new BodyNotJson());
      }
    };
    const onClose = () => {
      if (req.complete) return;
      cleanup();
      reject(new BodyUnreadable('the request was aborted before its body was received', 400));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new BodyUnreadable(`the body could not be received: ${error.message}`, 400));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onError);
  });
}

/** The hook request's fields that an oversized body's kept part holds whole: the parent (required) and the controller. */
export function readableFields(body: OversizedHookBody): { controller?: unknown; parent: unknown } | undefined {
  const parse = (field: string): unknown => {
    const extent = body.layout.fields.get(field);
    if (!extent || body.layout.duplicated.has(field) || extent.end > body.prefix.length) return undefined;
    try {
      return JSON.parse(body.prefix.subarray(extent.start, extent.end).toString('utf8')) as unknown;
    } catch {
      return undefined;
    }
  };
  const parent = parse('parent');
  if (parent === undefined) return undefined;
  const controller = parse('controller');
  return { ...(controller !== undefined ? { controller } : {}), parent };
}

/** What the answer to an oversized body says about it. */
export const oversizedSummary = (body: OversizedHookBody): OversizedBody => ({
  bytes: body.layout.bytes, limitBytes: body.limitBytes, largestChildren: body.layout.largestChildren, childCount: body.layout.childCount,
});
