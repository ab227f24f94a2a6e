import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { freePort } from '../../harness/net.js';

const ephemeralFirst = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32768; // Linux's default; macOS and Windows start higher
  }
})();

const listen = (port: number) => new Promise<Server>((resolve, reject) => {
  const server = createServer((socket) => socket.destroy());
  server.once('error', reject);
  server.listen(port, '127.0.0.1', () => resolve(server));
});

describe('freePort (ports for the control planes and webhook processes)', function () {
  // A port from the ephemeral range can be taken as a client's source port before the server
  // binds it: that lost a CI run ("bind: address already in use").
  it('hands out a bindable port below the ephemeral range, never the same one twice', async function () {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).to.equal(ports.length);
    for (const port of ports) expect(port).to.be.below(ephemeralFirst);
    const servers = await Promise.all(ports.map(listen));
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });
});
