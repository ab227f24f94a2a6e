// Loopback helpers shared by the tests, the demo and the benchmark.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { eventually } from './eventually.js';

const linuxEphemeralRange = '/proc/sys/net/ipv4/ip_local_port_range';

/**
 * Where freePort() looks: below the kernel's ephemeral range. A port from that range (what
 * listen(0) hands out) is free only until some client socket takes it as its source port,
 * and the suites open thousands of connections between choosing a port and kube-apiserver
 * binding it (CI once lost a run to "bind: address already in use" that way). A port below
 * the range is only ever taken by another listener, which the probe in freePort() sees.
 */
function portsOutsideEphemeralRange(): { first: number; last: number } | undefined {
  let ephemeralFirst = 32768;
  try {
    ephemeralFirst = Number(readFileSync(linuxEphemeralRange, 'utf8').trim().split(/\s+/)[0]) || ephemeralFirst;
  } catch {
    // not Linux: its default is the best guess
  }
  const first = 15_000;
  return ephemeralFirst - first >= 1_000 ? { first, last: ephemeralFirst - 1 } : undefined;
}

const candidates = portsOutsideEphemeralRange();
// Never hand out the same port twice in one process: a caller may not have bound the last one yet.
const handedOut = new Set<number>();

function listenOnce(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : undefined));
    });
  });
}

/** A TCP port free on 127.0.0.1 right now, outside the ephemeral range where the system has one. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const candidate = candidates ? candidates.first + Math.floor(Math.random() * (candidates.last - candidates.first + 1)) : 0;
    if (handedOut.has(candidate)) continue;
    const port = await listenOnce(candidate);
    if (port !== undefined && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no free TCP port on 127.0.0.1 after 200 attempts');
}

/** Resolves once GET url/healthz answers 200 (plain HTTP). */
export async function waitForHealthz(url: string, pollMs = 20, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => (await fetch(`${url}/healthz`)).ok, `${url}/healthz answers 200`, { timeoutMs, intervalMs: pollMs });
}
