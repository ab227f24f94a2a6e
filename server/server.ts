// The HTTP(S) server around the app: TLS with certificate reload, server-side timeouts so
// a slow or stalled client cannot hold the process, and a graceful stop.
import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';
import { WatchedFile } from './rotating-file.js';

export interface ClientTimeouts {
  /** A request's headers must arrive within this. */
  headersMs: number;
  /** The whole request (headers and body) must arrive within this; Metacontroller's hook timeout is 10 s. */
  requestMs: number;
  keepAliveMs: number;
}

export const defaultClientTimeouts: ClientTimeouts = { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 65_000 };

export interface ServerOptions {
  port: number;
  host?: string;
  /** `clientCaFile`: ask every client for a certificate and check it against these CAs (the hooks require one). */
  tls?: { certFile: string; keyFile: string; clientCaFile?: string; pollIntervalMs: number };
  shutdownTimeoutMs: number;
  log: Logger;
  clientTimeouts?: ClientTimeouts;
}

export interface RunningServer {
  server: Server | HttpsServer;
  port: number;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), then resolves. */
  stop(): Promise<void>;
}

/** Node's server-side limits from the client timeouts. */
function serverLimits(timeouts: ClientTimeouts) {
  return {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.keepAliveMs,
    // How often Node looks for requests past those timeouts (its default is 30 s).
    connectionsCheckingInterval: Math.min(1_000, timeouts.headersMs),
  };
}

/** An HTTPS server whose certificate, key and client CA are read again whenever their files change. */
function createTlsServer(app: RequestListener, tls: NonNullable<ServerOptions['tls']>, limits: ReturnType<typeof serverLimits>, log: Logger) {
  const cert = new WatchedFile(tls.certFile, tls.pollIntervalMs);
  const key = new WatchedFile(tls.keyFile, tls.pollIntervalMs);
  const clientCa = tls.clientCaFile ? new WatchedFile(tls.clientCaFile, tls.pollIntervalMs) : undefined;
  const watched = [cert, key, ...(clientCa ? [clientCa] : [])];
  const context = () => ({ cert: cert.current, key: key.current, ...(clientCa ? { ca: clientCa.current } : {}) });
  // Probes present no certificate: the handshake accepts them, and the hook
  // routes refuse a request whose certificate is missing or not from the CA (server/http/client-certificate.ts).
  const https = createHttpsServer({ ...limits, ...context(), ...(clientCa ? { requestCert: true, rejectUnauthorized: false } : {}) }, app);
  const reload = () => {
    try {
      https.setSecureContext(context());
      log.info('TLS certificate reloaded', { certFile: tls.certFile });
    } catch (error) {
      // A certificate and key from different rotations do not match; the other file's change follows.
      log.warn('TLS certificate not reloaded yet', { error: (error as Error).message });
    }
  };
  cert.onChange(reload);
  key.onChange(reload);
  clientCa?.onChange(reload);
  return { server: https, watched };
}

async function listen(server: Server | HttpsServer, port: number, host: string | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The server's stop: the same promise however often it is called. */
function gracefulStop(server: Server | HttpsServer, watched: WatchedFile[], options: ServerOptions): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        options.log.warn('shutdown timeout: closing connections with requests still in flight');
        server.closeAllConnections();
      }, options.shutdownTimeoutMs);
      force.unref();
      // Keep-alive connections would hold close() open: close each as soon as it is idle,
      // including those whose in-flight hook answers after this point.
      const closeIdle = setInterval(() => server.closeIdleConnections(), 50);
      server.close(() => {
        clearTimeout(force);
        clearInterval(closeIdle);
        for (const file of watched) file.close();
        resolve();
      });
      server.closeIdleConnections();
    });
    return stopping;
  };
}

export async function startServer(app: RequestListener, options: ServerOptions): Promise<RunningServer> {
  const limits = serverLimits(options.clientTimeouts ?? defaultClientTimeouts);
  const { server, watched } = options.tls
    ? createTlsServer(app, options.tls, limits, options.log)
    : { server: createHttpServer(limits, app), watched: [] };
  await listen(server, options.port, options.host);
  server.on('error', (error) => options.log.error('server error', { error: error.message }));
  const port = (server.address() as AddressInfo).port;
  return { server, port, stop: gracefulStop(server, watched, options) };
}
