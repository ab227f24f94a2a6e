// An HTTPS reverse proxy in front of a real API server that can answer chosen calls with
// an error instead of forwarding them: a 500 or a 429 from the TokenRequest API. Everything
// else reaches the real API server, as its admin. It says when a chosen call arrives, and can
// hold it there until the test lets it go on: a test then acts while that call is in flight.
// The proxy has its own CA; a kubeconfig pointing at it trusts that CA. It can also break the
// transport itself: close a keep-alive connection that was idle when the next call arrives on
// it (a server or load balancer that closed it meanwhile), and answer watches with an ERROR
// event or end them at once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ControlPlane } from './control-plane.js';
import { createControlPlanePki } from './pki.js';

export interface Fault {
  /** Calls whose method and path match get this answer. */
  method: string;
  pathPattern: RegExp;
  statusCode: number;
  retryAfterSeconds?: number;
}

/** A call that reached the proxy. */
export interface Arrival {
  method: string;
  path: string;
  /** A held call goes on: answered with the fault or forwarded, as any other. Does nothing for a call not held. */
  release(): void;
}

export interface FaultProxy {
  url: string;
  caPem: string;
  fault: Fault | undefined;
  /** Every call waits this long before it is answered or forwarded: a target slow on each call. */
  delayMs: number;
  /**
   * A call arriving on a connection idle at least this long is not answered: the connection is
   * dropped, as when the server closed it at the moment the client reused it. Undefined: never.
   */
  closeIdleAfterMs: number | undefined;
  /** Connections dropped so (closeIdleAfterMs). */
  idleClosed: number;
  /**
   * Watches answered, instead of forwarded, with one ERROR event (a 500 Status, not 410) and
   * the end of the stream (`error`), with an empty stream that ends at once (`empty`), or with
   * floodObjects ADDED events of made-up ServiceAccounts carrying floodLabels, then silence
   * (`flood`: a hostile server filling the webhook's cache).
   */
  watchFault: 'error' | 'empty' | 'flood' | undefined;
  floodObjects: number;
  floodLabels: Record<string, string>;
  /** Calls answered with the fault so far. */
  injected: number;
  /** Every call that reached the proxy, in order: what a webhook did to the target, writes included. */
  requests: { method: string; path: string }[];
  /**
   * Resolves when the next call with this method and a path matching the pattern reaches the
   * proxy (calls before this one are not counted). `hold`: that call waits at the proxy, its
   * caller still waiting for an answer, until the arrival's release().
   */
  arrival(method: string, pathPattern: RegExp, options?: { hold?: boolean }): Promise<Arrival>;
  kubeconfigYaml(): string;
  close(): Promise<void>;
}

interface ArrivalWaiter {
  method: string;
  pathPattern: RegExp;
  hold: boolean;
  arrived(arrival: Arrival): void;
}

export async function startFaultProxy(target: ControlPlane): Promise<FaultProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'fault-proxy-'));
  const pki = await createControlPlanePki(dir, 'fault-proxy');
  const waiters: ArrivalWaiter[] = [];
  const proxy: FaultProxy = {
    url: '', caPem: pki.caCertPem, fault: undefined, delayMs: 0, closeIdleAfterMs: undefined, idleClosed: 0, watchFault: undefined, floodObjects: 0, floodLabels: {}, injected: 0, requests: [],
    arrival: (method, pathPattern, options = {}) => new Promise((arrived) => {
      waiters.push({ method, pathPattern, hold: options.hold ?? false, arrived });
    }),
    kubeconfigYaml: () => target.adminKubeconfigYaml()
      .replace(target.server, proxy.url)
      .replace(Buffer.from(target.pki.caCertPem).toString('base64'), Buffer.from(pki.caCertPem).toString('base64')),
    close: async () => undefined,
  };
  /** When each connection last finished answering a call. */
  const idleSince = new WeakMap<Socket, number>();
  const server: Server = createServer({ cert: readFileSync(pki.servingCertPath), key: readFileSync(pki.servingKeyPath) }, (req, res) => {
    const method = req.method ?? '';
    const path = req.url ?? '';
    const lastAnsweredAt = idleSince.get(req.socket);
    if (proxy.closeIdleAfterMs !== undefined && lastAnsweredAt !== undefined && performance.now() - lastAnsweredAt >= proxy.closeIdleAfterMs) {
      proxy.idleClosed++;
      req.socket.destroy();
      return;
    }
    res.on('finish', () => idleSince.set(req.socket, performance.now()));
    const waiter = waiters.findIndex((candidate) => candidate.method === method && candidate.pathPattern.test(path));
    const [arrivalWaiter] = waiter === -1 ? [] : waiters.splice(waiter, 1);
    if (arrivalWaiter?.hold) {
      req.pause();
      let released = false;
      arrivalWaiter.arrived({ method, path, release: () => {
        if (released) return;
        released = true;
        proceed(req, res);
      } });
      return;
    }
    arrivalWaiter?.arrived({ method, path, release: () => undefined });
    proceed(req, res);
  });
  function proceed(req: IncomingMessage, res: ServerResponse): void {
    if (proxy.delayMs > 0 && !/[?&]watch=/.test(req.url ?? '')) {
      const delayMs = proxy.delayMs;
      req.pause();
      setTimeout(() => answer(req, res), delayMs);
    } else {
      answer(req, res);
    }
  }
  function answer(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    proxy.requests.push({ method: req.method ?? '', path: req.url ?? '' });
    if (proxy.watchFault && /[?&]watch=(true|1)/.test(req.url ?? '')) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (proxy.watchFault === 'flood') {
        const labels = proxy.floodLabels;
        let index = 0;
        const pump = () => {
          while (index < proxy.floodObjects && !res.destroyed) {
            const object = { metadata: { namespace: 'default', name: `flood-${index}`, uid: `flood-uid-${index}`, resourceVersion: '1', labels } };
            index += 1;
            if (!res.write(`${JSON.stringify({ type: 'ADDED', object })}\n`)) {
              res.once('drain', pump);
              return;
            }
          }
        };
        pump();
        return;
      }
      if (proxy.watchFault === 'error') {
        res.write(`${JSON.stringify({ type: 'ERROR', object: {
          kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, reason: 'InternalError', message: 'injected watch error',
        } })}\n`);
      }
      res.end();
      return;
    }
    const fault = proxy.fault;
    if (fault && req.method === fault.method && fault.pathPattern.test(req.url ?? '')) {
      proxy.injected++;
      req.resume();
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (fault.retryAfterSeconds !== undefined) headers['Retry-After'] = String(fault.retryAfterSeconds);
      res.writeHead(fault.statusCode, headers);
      res.end(JSON.stringify({
        kind: 'Status', apiVersion: 'v1', status: 'Failure', code: fault.statusCode,
        reason: fault.statusCode === 429 ? 'TooManyRequests' : 'InternalError', message: `injected ${fault.statusCode}`,
        ...(fault.retryAfterSeconds !== undefined ? { details: { retryAfterSeconds: fault.retryAfterSeconds } } : {}),
      }));
      return;
    }
    const { authorization: _caller, ...headers } = req.headers;
    const upstream = request(`${target.server}${req.url}`, {
      method: req.method, headers: { ...headers, host: `127.0.0.1:${target.apiServerPort}` },
      ca: target.pki.caCertPem, cert: target.pki.adminCertPem, key: target.pki.adminKeyPem,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    // The API server is gone: its connection drops, and so does the caller's, as without the proxy.
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  };
  return proxy;
}
