// A hostile or broken "API server" for a DPUCluster's kubeconfig: it accepts TLS and answers
// every call with 200 and a body that never ends (one JSON line that never closes), at about
// ENDLESS_BYTES_PER_SECOND. It runs in a process of its own, as a real target would, so its
// writing does not count against the event loop the tests measure. Started by
// startEndlessTarget(); run as a program, it serves until killed.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.js';
import { freePort } from './net.js';
import { createServingPki } from './pki.js';
import { startProcess } from './processes.js';

export interface EndlessTarget {
  /** https://localhost:port */
  server: string;
  caPem: string;
  stop(): Promise<void>;
}

const thisFile = fileURLToPath(import.meta.url);

export async function startEndlessTarget(bytesPerSecond: number): Promise<EndlessTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'endless-target-'));
  const pki = await createServingPki(dir, ['localhost']);
  await writeFile(join(dir, 'tls.crt'), pki.certPem);
  await writeFile(join(dir, 'tls.key'), pki.keyPem);
  const port = await freePort();
  const child = await startProcess(process.execPath, ['--import', 'tsx', thisFile], join(dir, 'log'), {
    ...process.env, ENDLESS_PORT: String(port), ENDLESS_DIR: dir, ENDLESS_BYTES_PER_SECOND: String(bytesPerSecond),
  });
  await eventually(() => new Promise<boolean>((resolve, reject) => {
    const probe = connect(port, '127.0.0.1', () => {
      probe.destroy();
      resolve(true);
    });
    probe.on('error', reject);
  }), 'the endless target listens', { timeoutMs: 20_000 });
  const server = `https://localhost:${port}`;
  return {
    server,
    caPem: pki.caCertPem,
    stop: async () => {
      await child.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function serve(): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const dir = process.env.ENDLESS_DIR!;
  const bytesPerSecond = Number(process.env.ENDLESS_BYTES_PER_SECOND);
  const tickMs = 10;
  const chunk = Buffer.alloc(Math.max(1, Math.round(bytesPerSecond * tickMs / 1_000)), 'x');
  const server = createServer({ cert: await readFile(join(dir, 'tls.crt')), key: await readFile(join(dir, 'tls.key')) }, (req, res) => {
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write('{"kind":"List","items":[],"metadata":{"continue":"');
    let writable = true;
    res.on('drain', () => {
      writable = true;
    });
    const timer = setInterval(() => {
      if (writable) writable = res.write(chunk);
    }, tickMs);
    res.on('close', () => clearInterval(timer));
  });
  server.listen(Number(process.env.ENDLESS_PORT), '127.0.0.1');
}

if (process.argv[1] === thisFile) void serve();
