// Hook authentication: a bearer token Metacontroller sends (webhook.authorization),
// compared in constant time with the one in HOOK_BEARER_TOKEN_FILE.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { WatchedFile } from '../watched-file.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

export function bearerAuth(tokenFile: WatchedFile) {
  return (req: Request, res: Response, next: NextFunction) => {
    const expected = tokenFile.current.toString('utf8').trim();
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    // Comparing digests keeps the comparison constant-time whatever the lengths.
    if (expected && match && timingSafeEqual(digest(match[1]!.trim()), digest(expected))) {
      next();
      return;
    }
    res.status(401).set('WWW-Authenticate', 'Bearer').json({ error: 'a valid bearer token is required' });
  };
}
