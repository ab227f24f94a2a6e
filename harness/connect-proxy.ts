// An HTTP CONNECT proxy on loopback, as HTTPS_PROXY names in a corporate network: it opens
// a TCP tunnel to the host:port asked for, resolving names from its own table first (so a
// test can use a name only the proxy knows, which a client that ignores the proxy cannot
// reach), and records every tunnel. TLS passes through it untouched.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export interface ConnectProxy {
  /** http://127.0.0.1:port, for HTTPS_PROXY. */
  url: string;
  /** host:port of every tunnel asked for, in order. */
  tunnels: string[];
  close(): Promise<void>;
}

/** `hosts`: names the proxy resolves itself (name → address); `credentials`: user:password it requires, if any. */
export async function startConnectProxy(options: { hosts?: Record<string, string>; credentials?: string } = {}): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const proxy: ConnectProxy = { url: '', tunnels: [], close: async () => undefined };
  const server: Server = createServer((_req, res) => {
    res.writeHead(405).end('only CONNECT');
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    const authority = req.url ?? '';
    proxy.tunnels.push(authority);
    if (options.credentials && req.headers['proxy-authorization'] !== `Basic ${Buffer.from(options.credentials).toString('base64')}`) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n');
      return;
    }
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
    if (!match) {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const [, host, port] = match;
    const upstream = connect(Number(port), options.hosts?.[host!] ?? host!);
    track(upstream);
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    upstream.once('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}
