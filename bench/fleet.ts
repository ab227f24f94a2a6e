// The fleet phase of the benchmark (issue 20, point 1): requests spread over many DPUClusters
// that the webhook sees as as many API servers. Part of `npm run bench:scale`, or on its own:
//   npx tsx bench/fleet.ts
// BENCH_FLEET_CLUSTERS (100), BENCH_FLEET_REQUESTS (10,000), BENCH_FLEET_REUSE_RATE (reuse-path
// syncs per second sent during the run, 20), BENCH_FLEET_IDLE_MS (the webhook's
// IDLE_TARGET_CLOSE_MS in this phase, 60,000), BENCH_FLEET_COMPARE (0: skip the one-cluster run
// that the memory per target is measured against).
//
// One kube-apiserver (the bench's target control plane) stands for every DPU cluster. Each
// DPUCluster's kubeconfig names its own loopback address (127.0.0.2, 127.0.0.3, ...), which the
// serving certificate carries as an IP SAN, so the webhook makes a client, a connection pool,
// a ServiceAccount watch and a cache per DPUCluster, as it would for separate clusters. A small
// proxy in this process listens on each address and passes every call to the API server. It
// terminates TLS (with the API server's own certificate and key) because one change is needed
// for the clusters to look separate: the webhook's cluster-wide list and watch of managed
// ServiceAccounts is narrowed to the namespace of that DPUCluster's requests. Without it every
// one of the 100 caches would hold every cluster's ServiceAccounts (100 times the entries), which
// no real fleet has. Calls with the admin client certificate go on with that certificate; calls
// with a bearer token (the sampled Secrets' tokens) go on with the token alone, so they
// authenticate as the ServiceAccount.
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink, rm } from 'node:fs/promises';
import { Agent, createServer, request, type Server } from 'node:https';
import { Worker } from 'node:worker_threads';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parse, stringify } from 'yaml';
import type { DpuServiceCredentialRequestStatus } from '../server/api.js';
import { KubeRestClient } from '../server/kube/rest.js';
import { connectionOf } from '../harness/connection.js';
import type { ControlPlane } from '../harness/control-plane.js';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { registerDpuCluster } from '../harness/dpucluster.js';
import { MetacontrollerDriver } from '../harness/metacontroller/driver.js';
import { authenticatesAs, decode } from '../harness/secrets.js';
import { serviceNetwork } from '../harness/webhook-env.js';
import type { WebhookInstall } from '../harness/webhook-install.js';
import { startWebhookProcess, type WebhookProcess } from '../harness/webhook-process.js';
import { fleetAddress, fleetClusters } from './fleet-addresses.js';
import { recommendedSettings } from './scale-steps.js';
import { buildWebhook, log as benchLog, metricSum, root, rssMb, startBenchEnvironment } from './setup.js';

const fleetRequests = Number(process.env.BENCH_FLEET_REQUESTS ?? 10_000);
const reuseRate = Number(process.env.BENCH_FLEET_REUSE_RATE ?? 20);
const idleCloseMs = Number(process.env.BENCH_FLEET_IDLE_MS ?? 60_000);
const compare = process.env.BENCH_FLEET_COMPARE !== '0';
/** BENCH_FLEET_HEAP_SNAPSHOT=1: the webhook writes a heap snapshot at each memory reading (beside its figures, in the temp folder). */
const heapSnapshots = process.env.BENCH_FLEET_HEAP_SNAPSHOT === '1';
/** Reuse-path syncs in flight at most; one due while that many are out is counted as skipped. */
const reuseMaxInFlight = 16;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value: number, digits = 1) => Number(value.toFixed(digits));

export interface FleetContext {
  host: ControlPlane;
  target: ControlPlane;
  hostConfig: KubeConfig;
  hostKubeconfig: string;
  install: WebhookInstall;
  log?: (text: string) => void;
}

async function pool<T>(items: T[], workers: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** The p-th percentile (0..100) of `values`. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/**
 * A quantile of the webhook's sync latency for decision "reused" between two scrapes, as the
 * upper bound of the histogram bucket it falls in (ms).
 */
function histogramQuantile(before: string, after: string, q: number): number {
  const buckets = (text: string) => new Map([...text.matchAll(
    /^dpu_credential_hook_duration_seconds_bucket\{(?=[^}]*hook="sync")(?=[^}]*outcome="reused")[^}]*le="([^"]+)"[^}]*\} ([0-9.e+-]+)/gm,
  )].map((match) => [match[1]!, Number(match[2])]));
  const [was, is] = [buckets(before), buckets(after)];
  const counts = [...is].map(([le, count]) => ({ le: le === '+Inf' ? Infinity : Number(le), count: count - (was.get(le) ?? 0) })).sort((a, b) => a.le - b.le);
  const total = counts.at(-1)?.count ?? 0;
  const found = counts.find(({ count }) => count >= q * total);
  return found ? found.le * 1_000 : Number.NaN;
}

/**
 * Sends sync requests from a worker thread and times them there: this process's event loop
 * (the driver, the proxy) is often busy for a hundred milliseconds and more, which would
 * otherwise count as the webhook's latency. Keep-alive connections, as Metacontroller's.
 */
class ReuseSender {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (answer: { ms: number; status: number; issuedAt?: string }) => void>();
  private nextId = 0;

  constructor(port: number, install: WebhookInstall) {
    this.worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const { Agent, request } = require('node:https');
      const agent = new Agent({ keepAlive: true, maxSockets: workerData.maxSockets, ca: workerData.ca, servername: workerData.servername });
      parentPort.on('message', ({ id, body }) => {
        const started = performance.now();
        const req = request({
          host: '127.0.0.1', port: workerData.port, path: '/sync', method: 'POST', agent, timeout: 30000,
          headers: { 'content-type': 'application/json', authorization: 'Bearer ' + workerData.token },
        }, (res) => {
          const chunks = [];
          res.on('data', (chunk) => chunks.push(chunk));
          res.on('end', () => {
            const ms = performance.now() - started;
            let issuedAt;
            try { issuedAt = JSON.parse(Buffer.concat(chunks).toString()).status?.issuedAt; } catch {}
            parentPort.postMessage({ id, ms, status: res.statusCode, issuedAt });
          });
        });
        req.on('error', () => parentPort.postMessage({ id, ms: performance.now() - started, status: 0 }));
        req.end(body);
      });
    `, { eval: true, workerData: { port, ca: install.pki.caCertPem, servername: install.serviceHost, token: install.hookToken, maxSockets: reuseMaxInFlight } });
    this.worker.on('message', (answer: { id: number; ms: number; status: number; issuedAt?: string }) => {
      this.waiting.get(answer.id)?.(answer);
      this.waiting.delete(answer.id);
    });
  }

  send(body: string): Promise<{ ms: number; status: number; issuedAt?: string }> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ id, body });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** One DPUCluster of the benchmark: its address, and the namespace (host and target) its requests use. */
interface FleetCluster {
  name: string;
  address: string;
}

/**
 * The proxy: one HTTPS listener per cluster address on the API server's port, passing every
 * call on to the API server (see the file's head). Counts connections and watches open per address.
 */
class FleetProxy {
  private readonly servers: Server[] = [];
  readonly connections = new Map<string, number>();
  readonly watches = new Map<string, number>();
  private readonly adminAgent: Agent;
  private readonly tokenAgent: Agent;

  constructor(private readonly target: ControlPlane) {
    const ca = target.pki.caCertPem;
    this.adminAgent = new Agent({ keepAlive: true, maxSockets: 512, ca, cert: target.pki.adminCertPem, key: target.pki.adminKeyPem });
    this.tokenAgent = new Agent({ keepAlive: true, maxSockets: 64, ca });
  }

  async listen(cluster: FleetCluster): Promise<void> {
    const { address, name } = cluster;
    const server = createServer({
      cert: readFileSync(this.target.pki.servingCertPath), key: readFileSync(this.target.pki.servingKeyPath),
      ca: this.target.pki.caCertPem, requestCert: true, rejectUnauthorized: false,
    }, (req, res) => this.pass(name, address, req, res));
    // kube-apiserver's own idle timeout for keep-alive connections (genericapiserver: 90 s).
    server.keepAliveTimeout = 90_000;
    server.on('secureConnection', (socket: Socket) => {
      this.connections.set(address, (this.connections.get(address) ?? 0) + 1);
      socket.once('close', () => this.connections.set(address, this.connections.get(address)! - 1));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.target.apiServerPort, address, () => resolve());
    });
    this.servers.push(server);
  }

  private pass(namespace: string, address: string, req: IncomingMessage, res: ServerResponse): void {
    let path = req.url ?? '/';
    // The webhook's managed-ServiceAccount cache lists and watches over all namespaces: here, this cluster's only.
    if (/^\/api\/v1\/serviceaccounts(\?|$)/.test(path)) path = path.replace('/api/v1/serviceaccounts', `/api/v1/namespaces/${namespace}/serviceaccounts`);
    const socket = req.socket as TLSSocket;
    const withCertificate = socket.authorized && Boolean(socket.getPeerCertificate()?.subject);
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.connection;
    const isWatch = /[?&]watch=(true|1)/.test(path);
    if (isWatch) this.watches.set(address, (this.watches.get(address) ?? 0) + 1);
    let counted = isWatch;
    const done = () => {
      if (counted) this.watches.set(address, this.watches.get(address)! - 1);
      counted = false;
    };
    const upstream = request({
      host: '127.0.0.1', port: this.target.apiServerPort, method: req.method, path, headers,
      agent: withCertificate ? this.adminAgent : this.tokenAgent,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.once('end', done);
      answer.once('error', () => res.destroy());
    });
    upstream.on('error', () => {
      done();
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    // The client went away (a closed watch, a destroyed pool): so does the call to the API server.
    res.once('close', () => {
      done();
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  total(map: Map<string, number>): number {
    return [...map.values()].reduce((sum, value) => sum + value, 0);
  }

  async close(): Promise<void> {
    for (const server of this.servers) server.closeAllConnections();
    await Promise.all(this.servers.map((server) => new Promise((resolve) => server.close(resolve))));
    this.adminAgent.destroy();
    this.tokenAgent.destroy();
  }
}

/** The webhook's established TCP connections (IPv4) by remote address, from /proc. */
async function connectionsOf(pid: number): Promise<Map<string, number>> {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match) inodes.add(match[1]!);
  }
  const byRemote = new Map<string, number>();
  for (const line of (await readFile('/proc/net/tcp', 'utf8')).split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== '01' || !inodes.has(fields[9]!)) continue;
    const [ipHex, portHex] = fields[2]!.split(':') as [string, string];
    const ip = [3, 2, 1, 0].map((byte) => parseInt(ipHex.slice(byte * 2, byte * 2 + 2), 16)).join('.');
    const remote = `${ip}:${parseInt(portHex, 16)}`;
    byRemote.set(remote, (byRemote.get(remote) ?? 0) + 1);
  }
  return byRemote;
}

/**
 * Loaded into the webhook before its own code (with --expose-gc): on SIGUSR2 it collects
 * garbage and writes process.memoryUsage() to FLEET_MEMORY_FILE. The webhook is not changed.
 */
const memoryProbe = `
import { renameSync, writeFileSync } from 'node:fs';
import { writeHeapSnapshot } from 'node:v8';
process.on('SIGUSR2', () => {
  globalThis.gc(); globalThis.gc();
  const file = process.env.FLEET_MEMORY_FILE;
  if (process.env.FLEET_HEAP_SNAPSHOT === '1') writeHeapSnapshot(file + '.' + Date.now() + '.heapsnapshot');
  writeFileSync(file + '.tmp', JSON.stringify(process.memoryUsage()));
  renameSync(file + '.tmp', file);
});`;

interface Memory {
  rssMb: number;
  /** After a full garbage collection. */
  heapUsedMb: number;
  externalMb: number;
}

async function memoryAfterGc(webhook: WebhookProcess, file: string): Promise<Memory> {
  const rss = await rssMb(webhook.pid, 'VmRSS');
  await rm(file, { force: true });
  process.kill(webhook.pid, 'SIGUSR2');
  for (let waited = 0; ; waited += 100) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text) {
      const usage = JSON.parse(text) as NodeJS.MemoryUsage;
      return { rssMb: round(rss), heapUsedMb: round(usage.heapUsed / 2 ** 20, 2), externalMb: round(usage.external / 2 ** 20, 2) };
    }
    if (waited > 30_000) throw new Error('the webhook did not write its memory figures');
    await sleep(100);
  }
}

/**
 * One run: a fresh webhook process, `requests` requests over `clusters`, reconciled by the driver
 * at the recommended settings, with reuse-path syncs of requests already Ready sent meanwhile.
 */
async function runOnce(context: FleetContext, proxy: FleetProxy, label: string, clusters: FleetCluster[], requests: number, idle: boolean) {
  const log = context.log ?? benchLog;
  const { hostConfig, target, install } = context;
  const host = new KubeRestClient(connectionOf(hostConfig), { timeoutMs: 60_000, maxSockets: 64 });
  const targetApi = new KubeRestClient(connectionOf(target.adminKubeConfig()), { timeoutMs: 60_000, maxSockets: 16 });
  log(`fleet (${label}): ${clusters.length} DPUClusters, ${requests} requests`);
  const adminYaml = parse(target.adminKubeconfigYaml()) as { clusters: { name: string; cluster: { server: string } }[] };
  await pool(clusters, 8, async (cluster) => {
    await proxy.listen(cluster);
    for (const api of [host, targetApi]) await api.request('POST', '/api/v1/namespaces', { metadata: { name: cluster.name } });
    const kubeconfig = structuredClone(adminYaml);
    kubeconfig.clusters[0]!.cluster.server = `https://${cluster.address}:${target.apiServerPort}`;
    await registerDpuCluster(hostConfig, target, { name: cluster.name, namespace: cluster.name, kubeconfigYaml: stringify(kubeconfig) });
  });
  const all = Array.from({ length: requests }, (_, index) => ({ name: `r-${index}`, cluster: clusters[index % clusters.length]! }));
  await pool(all, 32, async ({ name, cluster }) => {
    await host.request('POST', `/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/${cluster.name}/dpuservicecredentialrequests`, {
      apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
      spec: {
        serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: cluster.name, namespace: cluster.name },
        type: 'kubeconfig', secret: { name },
      },
    });
  });

  const memoryFile = join(tmpdir(), `fleet-memory-${process.pid}-${label}.json`);
  // The log outside the control plane's folder, so it outlives the run.
  const webhook = await startWebhookProcess(install, context.hostKubeconfig, join(tmpdir(), `fleet-webhook-${label}-${Date.now()}.log`),
    { LOG_LEVEL: 'info', IDLE_TARGET_CLOSE_MS: String(idleCloseMs), FLEET_MEMORY_FILE: memoryFile, FLEET_HEAP_SNAPSHOT: heapSnapshots ? '1' : '0' },
    { entry: join(root, 'dist/server/main.js'), nodeFlags: ['--expose-gc', `--import=data:text/javascript,${encodeURIComponent(memoryProbe)}`] });
  const startMemory = await memoryAfterGc(webhook, memoryFile);
  const driver = await MetacontrollerDriver.start({
    host: hostConfig, network: await serviceNetwork(webhook.port), clientGo: recommendedSettings, informers: 'watch',
  });
  const scrape = async () => (await fetch(webhook.metricsUrl)).text();
  try {
    for (const { name, cluster } of all) {
      while (!await driver.parents.get(cluster.name, name)) await sleep(20);
    }

    // Reuse-path syncs during the run: requests Ready for 2 s or more, picked at random, their
    // sync built by the driver from its caches, sent at a steady rate from a worker thread.
    const ready: { name: string; namespace: string; doneAt: number; issuedAt?: string }[] = [];
    const reuseMs: number[] = [];
    let reuseErrors = 0;
    let reuseMinted = 0;
    let reuseSkipped = 0;
    let inFlight = 0;
    let running = true;
    const sender = new ReuseSender(webhook.port, install);
    const reuseOne = async (item: (typeof ready)[number]) => {
      const body = await driver.syncRequestBody(item.namespace, item.name);
      if (!body) return;
      const answer = await sender.send(body);
      reuseMs.push(answer.ms);
      if (answer.status !== 200) {
        reuseErrors++;
        return;
      }
      if (answer.issuedAt !== item.issuedAt) reuseMinted++;
    };
    const reuseLoop = (async () => {
      const intervalMs = 1_000 / reuseRate;
      for (let due = performance.now(); running; due += intervalMs) {
        await sleep(Math.max(0, due - performance.now()));
        const settled = ready.filter((item) => Date.now() - item.doneAt >= 2_000);
        if (settled.length === 0) continue;
        if (inFlight >= reuseMaxInFlight) {
          reuseSkipped++;
          continue;
        }
        inFlight++;
        void reuseOne(settled[randomInt(settled.length)]!).catch(() => reuseErrors++).finally(() => inFlight--);
      }
    })();

    const before = await scrape();
    const callsBefore = metricSum(before, 'dpu_credential_kube_requests_total');
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const [mcCallsBefore, hookCallsBefore] = [driver.api.total, driver.calls.length];
    const started = performance.now();
    // A request not Ready after its first reconcile (an error, a 429) is requeued by the driver as
    // Metacontroller requeues it (backoff, Retry-After); its due syncs run until it is Ready.
    const pending = new Map<string, { name: string; namespace: string }>();
    const firstPassReasons = new Map<string, number>();
    const readyNow = (name: string, namespace: string, status: DpuServiceCredentialRequestStatus | undefined) => {
      const condition = status?.conditions?.find((candidate) => candidate.type === 'Ready');
      if (condition?.status !== 'True') return condition;
      ready.push({ name, namespace, doneAt: Date.now(), ...(status?.issuedAt ? { issuedAt: status.issuedAt } : {}) });
      return undefined;
    };
    await pool(all, recommendedSettings.workers, async ({ name, cluster }) => {
      let failing: { reason?: string; message?: string } | undefined;
      try {
        const { response } = await driver.reconcile(cluster.name, name);
        failing = readyNow(name, cluster.name, response.status as DpuServiceCredentialRequestStatus);
      } catch (error) {
        failing = { reason: (error as Error).name, message: (error as Error).message };
      }
      if (failing) {
        pending.set(`${cluster.name}/${name}`, { name, namespace: cluster.name });
        const key = `${failing.reason}: ${(failing.message ?? '').slice(0, 160)}`;
        firstPassReasons.set(key, (firstPassReasons.get(key) ?? 0) + 1);
      }
    });
    const notReadyFirstPass = pending.size;
    if (notReadyFirstPass > 0) log(`fleet (${label}): ${notReadyFirstPass} not Ready after their first reconcile: ${JSON.stringify(Object.fromEntries(firstPassReasons))}`);
    for (const retryUntil = performance.now() + 5 * 60_000; pending.size > 0 && performance.now() < retryUntil;) {
      await sleep(500);
      await driver.runDue().catch(() => undefined);
      for (const [key, { name, namespace }] of pending) {
        const parent = await driver.parents.get(namespace, name) as { status?: DpuServiceCredentialRequestStatus } | undefined;
        if (!readyNow(name, namespace, parent?.status)) pending.delete(key);
      }
    }
    const notReady = pending.size;
    const seconds = (performance.now() - started) / 1_000;
    running = false;
    await reuseLoop;
    while (inFlight > 0) await sleep(20);
    await sender.close();
    loopDelay.disable();
    const after = await scrape();
    const webhookApiCalls = metricSum(after, 'dpu_credential_kube_requests_total') - callsBefore;
    if (notReady > 0) log(`fleet (${label}): ${notReady} of ${requests} requests still not Ready 5 minutes after the run`);
    log(`fleet (${label}): ${requests - notReady} of ${requests} Ready in ${seconds.toFixed(1)} s; ${reuseMs.length} reuse-path syncs meanwhile, p99 ${percentile(reuseMs, 99).toFixed(0)} ms`);

    // What the webhook holds at the end of the run: memory, connections per cluster, watches.
    const peakRssMb = await rssMb(webhook.pid, 'VmHWM');
    const end = await memoryAfterGc(webhook, memoryFile);
    const holding = await held(webhook, proxy, clusters, target.apiServerPort);
    log(`fleet (${label}): RSS ${end.rssMb} MB (peak ${peakRssMb.toFixed(0)}), heap after GC ${end.heapUsedMb} MB; ${holding.connections} connections to ${holding.clustersConnected} clusters, ${holding.watches} watches`);
    await checkSecrets(host, all.filter(({ name, cluster }) => !pending.has(`${cluster.name}/${name}`)), target.apiServerPort);

    // The idle close: nothing uses the targets any more; within IDLE_TARGET_CLOSE_MS (and the
    // sweep after it) every target's connections and watch should be gone.
    let afterIdle: { seconds: number; connections: number; watches: number; memory: Memory } | undefined;
    if (idle) {
      const idleStarted = performance.now();
      let now = holding;
      while ((now.connections > 0 || now.watches > 0) && performance.now() - idleStarted < idleCloseMs + 2 * 60_000) {
        await sleep(2_000);
        now = await held(webhook, proxy, clusters, target.apiServerPort);
      }
      afterIdle = { seconds: round((performance.now() - idleStarted) / 1_000), connections: now.connections, watches: now.watches, memory: await memoryAfterGc(webhook, memoryFile) };
      log(`fleet (${label}): after ${afterIdle.seconds} s unused: ${now.connections} connections, ${now.watches} watches; heap after GC ${afterIdle.memory.heapUsedMb} MB, RSS ${afterIdle.memory.rssMb} MB`);
    }
    return {
      clusters: clusters.length, requests, seconds: round(seconds, 2), notReadyFirstPass, firstPassReasons: Object.fromEntries(firstPassReasons), notReady,
      webhookApiCallsPerRequest: round(webhookApiCalls / requests, 2),
      metacontrollerApiCallsPerRequest: round((driver.api.total - mcCallsBefore) / requests, 2),
      hookCallsPerRequest: round((driver.calls.length - hookCallsBefore) / requests, 2),
      reuse: {
        ratePerSecond: reuseRate, syncs: reuseMs.length, p50Ms: round(percentile(reuseMs, 50)), p99Ms: round(percentile(reuseMs, 99)),
        maxMs: round(Math.max(...reuseMs)), errors: reuseErrors, minted: reuseMinted, skipped: reuseSkipped,
        /** Inside the webhook: every sync answered 'reused' during the run (the driver's second syncs too), from its histogram (bucket bounds). */
        webhookReusedP50Ms: histogramQuantile(before, after, 0.5), webhookReusedP99Ms: histogramQuantile(before, after, 0.99),
        /** This process's own event-loop delay during the run (the driver and the proxy share it; the syncs are timed in a worker thread). */
        benchLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6), benchLoopDelayMaxMs: round(loopDelay.max / 1e6),
        /** The webhook's worst event-loop delay during the run (prom-client's, reset by the scrape before it). */
        webhookLoopDelayMaxMs: round(metricSum(after, 'nodejs_eventloop_lag_max_seconds') * 1_000),
      },
      memory: { start: startMemory, end, peakRssMb: round(peakRssMb) },
      held: holding, afterIdle,
    };
  } finally {
    driver.close();
    await webhook.stop();
    host.close();
    targetApi.close();
  }
}

/** Connections the webhook holds to the clusters' addresses, and the watches open through the proxy. */
async function held(webhook: WebhookProcess, proxy: FleetProxy, clusters: FleetCluster[], port: number) {
  const byRemote = await connectionsOf(webhook.pid);
  const perCluster = clusters.map((cluster) => byRemote.get(`${cluster.address}:${port}`) ?? 0);
  const watches = clusters.reduce((sum, cluster) => sum + (proxy.watches.get(cluster.address) ?? 0), 0);
  return {
    connections: perCluster.reduce((sum, count) => sum + count, 0),
    clustersConnected: perCluster.filter((count) => count > 0).length,
    maxConnectionsPerCluster: Math.max(...perCluster),
    watches,
    /** Every established connection of the webhook (host, Metacontroller's, the targets'). */
    allConnections: [...byRemote.values()].reduce((sum, count) => sum + count, 0),
  };
}

/**
 * Every request's Secret holds a kubeconfig naming its own cluster's address; a sample (one
 * per cluster, at least 20) authenticates there as its ServiceAccount.
 */
async function checkSecrets(host: KubeRestClient, all: { name: string; cluster: FleetCluster }[], port: number): Promise<void> {
  const secrets = new Map<string, V1Secret>();
  for (const namespace of new Set(all.map(({ cluster }) => cluster.name))) {
    let next: string | undefined;
    do {
      const page = await host.request<{ items: V1Secret[]; metadata: { continue?: string } }>('GET',
        `/api/v1/namespaces/${namespace}/secrets?limit=1000${next ? `&continue=${encodeURIComponent(next)}` : ''}`);
      for (const secret of page.items) secrets.set(`${namespace}/${secret.metadata!.name}`, secret);
      next = page.metadata.continue;
    } while (next);
  }
  const wrong = all.filter(({ name, cluster }) => {
    const secret = secrets.get(`${cluster.name}/${name}`);
    if (!secret?.data?.kubeconfig) return true;
    const config = parse(decode(secret, 'kubeconfig')) as { clusters?: { cluster?: { server?: string } }[] };
    return config.clusters?.[0]?.cluster?.server !== `https://${cluster.address}:${port}`;
  });
  if (wrong.length > 0) throw new Error(`${wrong.length} Secrets missing, without a kubeconfig or naming another server, e.g. ${wrong[0]!.name}`);
  const step = Math.max(1, Math.floor(all.length / Math.max(20, new Set(all.map(({ cluster }) => cluster.name)).size)));
  let checked = 0;
  for (let index = 0; index < all.length; index += step) {
    const { name, cluster } = all[index]!;
    const who = await authenticatesAs(secrets.get(`${cluster.name}/${name}`)!);
    if (who !== `system:serviceaccount:${cluster.name}:${name}-sa`) throw new Error(`${cluster.name}/${name} authenticates as ${who}`);
    checked++;
  }
  benchLog(`fleet: every Secret names its cluster; ${checked} sampled tokens authenticate as their ServiceAccounts`);
}

/**
 * The fleet phase: BENCH_FLEET_REQUESTS over BENCH_FLEET_CLUSTERS DPUClusters, then (unless
 * BENCH_FLEET_COMPARE=0) the same number over one DPUCluster in a fresh webhook process; memory
 * per target cluster is the difference at the end of the two runs divided by the extra clusters.
 */
export async function runFleet(context: FleetContext) {
  const log = context.log ?? benchLog;
  const proxy = new FleetProxy(context.target);
  try {
    const fleet = Array.from({ length: fleetClusters }, (_, index) => ({ name: `fleet-${index}`, address: fleetAddress(index) }));
    const many = await runOnce(context, proxy, 'fleet', fleet, fleetRequests, true);
    log(`fleet (fleet): ${JSON.stringify(many)}`);
    const one = compare ? await runOnce(context, proxy, 'one', [{ name: 'fleet-one', address: fleetAddress(fleetClusters) }], fleetRequests, false) : undefined;
    if (one) log(`fleet (one): ${JSON.stringify(one)}`);
    const extra = fleetClusters - 1;
    const perTarget = one && extra > 0 ? {
      rssKb: round(((many.memory.end.rssMb - one.memory.end.rssMb) * 1024) / extra),
      heapKb: round(((many.memory.end.heapUsedMb - one.memory.end.heapUsedMb) * 1024) / extra),
      externalKb: round(((many.memory.end.externalMb - one.memory.end.externalMb) * 1024) / extra),
    } : undefined;
    // What the idle close released, per target (same process, before and after).
    const releasedPerTarget = many.afterIdle ? {
      heapKb: round(((many.memory.end.heapUsedMb - many.afterIdle.memory.heapUsedMb) * 1024) / fleetClusters),
      rssKb: round(((many.memory.end.rssMb - many.afterIdle.memory.rssMb) * 1024) / fleetClusters),
    } : undefined;
    if (perTarget) log(`fleet: per target cluster RSS ${perTarget.rssKb} KB, heap ${perTarget.heapKb} KB (${fleetClusters} against 1, ${fleetRequests} requests each)`);
    return {
      fleet: many, one, perTarget, releasedPerTarget, idleCloseMs,
      headline: {
        fleetClusters,
        fleetRequests,
        secondsFleet: many.seconds,
        rssFleetMb: many.memory.end.rssMb,
        rssPerTargetKb: perTarget?.rssKb ?? Number.NaN,
        fleetReuseP99Ms: many.reuse.p99Ms,
      },
    };
  } finally {
    await proxy.close();
  }
}

// On its own: build, start the bench's control planes and install, run the fleet phase.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const run = async () => {
    await buildWebhook();
    const env = await startBenchEnvironment();
    const started = performance.now();
    const result = await runFleet(env);
    benchLog(`fleet phase took ${((performance.now() - started) / 1_000).toFixed(0)} s`);
    await stopAllControlPlanes();
    console.log(JSON.stringify(result, null, 2));
    console.log(JSON.stringify(result.headline));
  };
  run().then(() => process.exit(0), async (error: unknown) => {
    console.error(error instanceof Error ? error.stack : error);
    await stopAllControlPlanes();
    process.exit(1);
  });
}
