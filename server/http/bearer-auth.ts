// Hook authentication: the bearer token Metacontroller sends (webhook.authorization),
// compared in constant time with the hook-token Secret's `token` and, during a rotation,
// its `previous`. Metacontroller reads its token only when it (re)builds the controller,
// so for a while after the Secret changes it still sends the old one.
import { hash, timingSafeEqual } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { WatchedFile } from '../rotating-file.js';
import type { CallRefusal } from './json-answer.js';

// One-shot hash: half the cost of a Hash object, and this runs on every hook call.
const digest = (value: string) => hash('sha256', value, 'buffer');
// Keyed by the Buffer a WatchedFile holds, which is replaced whenever the file changes: the
// expected tokens are hashed once per content, not on every hook call.
const digests = new WeakMap<Buffer, Buffer | null>();
const digestOf = (content: Buffer | undefined) => {
  if (!content) return undefined;
  let known = digests.get(content);
  if (known === undefined) {
    const text = content.toString('utf8').trim();
    known = text ? digest(text) : null;
    digests.set(content, known);
  }
  return known ?? undefined;
};

/** `token`, and `previous` beside it when present: the keys of the mounted hook-token Secret. */
export class HookTokens {
  private readonly files: WatchedFile[];

  constructor(tokenFile: string, pollIntervalMs: number) {
    this.files = [
      new WatchedFile(tokenFile, pollIntervalMs),
      new WatchedFile(join(dirname(tokenFile), 'previous'), pollIntervalMs, true),
    ];
  }

  private matches(presented: Buffer, read: (file: WatchedFile) => Buffer | undefined): boolean {
    // Every file is compared, so the time taken does not say which one matched.
    let matched = false;
    for (const file of this.files) {
      const expected = digestOf(read(file));
      if (expected && timingSafeEqual(presented, expected)) matched = true;
    }
    return matched;
  }

  accepts(token: string): boolean {
    const presented = digest(token);
    // A token not known yet may be one the volume has just swapped in, between two polls:
    // read the files again before refusing. Kubernetes swaps all keys of a Secret volume at once.
    return this.matches(presented, (file) => file.current) || this.matches(presented, (file) => file.readNow());
  }

  close(): void {
    for (const file of this.files) file.close();
  }
}

/**
 * The token of an `Authorization: Bearer <token>` header (the scheme in any case), or
 * undefined. Read without a regular expression: `/^Bearer\s+(.+)$/` backtracks quadratically
 * over a run of spaces, and anyone who reaches the port chooses this header.
 */
export function bearerTokenOf(header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  const separator = header.charCodeAt(6);
  if (separator !== 0x20 && separator !== 0x09) return undefined;
  return header.slice(7).trim() || undefined;
}

const noValidToken: CallRefusal = { status: 401, error: 'a valid bearer token is required', headers: { 'WWW-Authenticate': 'Bearer' } };

/** The refusal of a hook call that carries none of the tokens; undefined when it carries one. */
export function bearerRefusal(tokens: HookTokens, req: IncomingMessage): CallRefusal | undefined {
  const presented = bearerTokenOf(req.headers.authorization);
  return presented && tokens.accepts(presented) ? undefined : noValidToken;
}
