// Loopback helpers shared by the tests, the demo and the benchmark.
import { createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once GET url/healthz answers 200 (plain HTTP). */
export async function waitForHealthz(url: string, pollMs = 20, timeoutMs = 30_000): Promise<void> {
  for (let waited = 0; waited < timeoutMs; waited += pollMs) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new Error(`${url}/healthz did not answer within ${timeoutMs} ms`);
}
