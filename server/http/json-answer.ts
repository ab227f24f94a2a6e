// Answers of the hook port written straight on node:http: the headers express's res.json wrote
// for them (no ETag, no X-Powered-By), and the body in one write.
import type { ServerResponse } from 'node:http';

/** A hook call answered before its hook runs: who is calling, or what it sends, is refused. */
export interface CallRefusal {
  status: number;
  error: string;
  headers?: Readonly<Record<string, string>>;
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers?: Readonly<Record<string, string>>): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  if (headers) for (const [name, header] of Object.entries(headers)) res.setHeader(name, header);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(body);
}

export const sendRefusal = (res: ServerResponse, refusal: CallRefusal): void =>
  sendJson(res, refusal.status, { error: refusal.error }, refusal.headers);
