// npm run bench: the webhook measured side by side with baselines, in one run, on this machine.
// Prints a table, writes bench/results.json, and ends with one JSON line of the headline figures.
import { CoreV1Api } from '@kubernetes/client-node';
import type { Result } from 'autocannon';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { SyncRequest, SyncResponse } from '../server/metacontroller.js';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { MetacontrollerDriver } from '../harness/metacontroller/driver.js';
import { serviceNetwork } from '../harness/webhook-env.js';
import type { WebhookInstall } from '../harness/webhook-install.js';
import type { WebhookProcess } from '../harness/webhook-process.js';
import {
  buildWebhook, connections, cpuMs, log, median, metricSum, reuseRequestBody, root, rssMb, startBaseline, startBenchEnvironment, type BenchEnvironment,
} from './setup.js';
import { runScale } from './scale.js';
import { Scale } from './scale-steps.js';
import { runFleet } from './fleet.js';

const loadSeconds = Number(process.env.BENCH_LOAD_SECONDS ?? 10);
const mintSamples = 40;
const scaleRequests = Number(process.env.BENCH_SCALE_REQUESTS ?? 1000);
const scaleWorkers = 16;
const memorySyncs = Number(process.env.BENCH_MEMORY_SYNCS ?? 100_000);
const coldStartRuns = 5;
/** `npm run bench:scale`: the scale mode after the usual measures, in the same run. */
const withScale = process.argv.includes('--scale');
/** Idle is read this long after start: V8 gives back the young generation it grew while loading modules within about 20 s. */
const idleAfterMs = 30_000;

let env: BenchEnvironment;
let install: WebhookInstall;

async function apiCallCount(webhook: WebhookProcess): Promise<number> {
  return metricSum(await (await fetch(webhook.metricsUrl)).text(), 'dpu_credential_kube_requests_total');
}

function load(port: number, body: string, options: { duration?: number; amount?: number }): Promise<Result> {
  return env.load(port, body, options.amount ? { amount: options.amount } : { duration: options.duration ?? loadSeconds });
}

function summary(result: Result) {
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.non2xx + result.timeouts,
    total: result.requests.total,
  };
}

async function main(): Promise<void> {
  await buildWebhook();
  env = await startBenchEnvironment();
  ({ install } = env);
  const { hostConfig, target } = env;
  const startWebhook = () => env.startWebhook();

  // Cold start first, on an idle machine: process start to the first 200 from /healthz (polled every 100 ms).
  const coldStartMs: number[] = [];
  for (let run = 0; run < coldStartRuns; run++) {
    const started = performance.now();
    const candidate = await startWebhook();
    coldStartMs.push(performance.now() - started);
    await candidate.stop();
  }
  log(`cold start: median ${median(coldStartMs).toFixed(0)} ms of ${coldStartRuns}`);

  const webhook = await startWebhook();
  const webhookPort = webhook.port;
  // Idle: started and ready, no hook call yet; what a replica costs before its first request.
  await new Promise((resolve) => setTimeout(resolve, idleAfterMs));
  const idleRssMb = await rssMb(webhook.pid, 'VmRSS');
  log(`idle RSS ${idleRssMb.toFixed(1)} MB, ${idleAfterMs / 1_000} s after start`);
  const network = await serviceNetwork(webhookPort);
  const driver = await MetacontrollerDriver.start({ host: hostConfig, network });

  // 1. Reuse path: the sync Metacontroller sends when nothing changed.
  const reuseBody = await reuseRequestBody(env, driver);
  const responseBytes = (await install.call(webhookPort, '/sync', { method: 'POST', body: reuseBody })).body.length;
  const { process: baseline, port: baselinePort } = await startBaseline(env, responseBytes);
  log(`reuse path: ${connections} connections, ${loadSeconds} s each, request ${reuseBody.length} B, response ${responseBytes} B`);
  await load(baselinePort, reuseBody, { duration: 2 });
  await load(webhookPort, reuseBody, { duration: 2 });
  const callsBefore = await apiCallCount(webhook);
  const cpuBefore = await cpuMs(webhook.pid);
  const reuseResult = await load(webhookPort, reuseBody, {});
  const reuseCpuMsPerSync = (await cpuMs(webhook.pid) - cpuBefore) / reuseResult.requests.total;
  const reuseCallsPerSync = (await apiCallCount(webhook) - callsBefore) / reuseResult.requests.total;
  const baselineResult = await load(baselinePort, reuseBody, {});
  const reuse = summary(reuseResult);
  const base = summary(baselineResult);
  log(`reuse ${reuse.requestsPerSecond}/s p99 ${reuse.p99Ms} ms; baseline ${base.requestsPerSecond}/s p99 ${base.p99Ms} ms; ${reuseCallsPerSync.toFixed(3)} API calls per sync, ${reuseCpuMsPerSync.toFixed(2)} ms webhook CPU per sync`);

  // 2. Mint path: one sync that mints, against the same calls made directly with client-node.
  const parsed = JSON.parse(reuseBody) as SyncRequest;
  const mintMs: number[] = [];
  for (let sample = 0; sample < mintSamples; sample++) {
    // A request seen for the first time: no Secret, no status.
    const { status: _status, ...parent } = parsed.parent;
    const body: SyncRequest = { ...parsed, parent, children: { 'Secret.v1': {} } };
    const started = performance.now();
    const answer = await install.call(webhookPort, '/sync', { method: 'POST', body: JSON.stringify(body) });
    const response = JSON.parse(answer.body) as SyncResponse;
    mintMs.push(performance.now() - started);
    if (response.children.length !== 1) throw new Error('the mint-path sync returned no Secret');
  }
  const core = target.adminKubeConfig().makeApiClient(CoreV1Api);
  const directMs: number[] = [];
  for (let sample = 0; sample < mintSamples; sample++) {
    const started = performance.now();
    await core.readNamespacedServiceAccount({ namespace: 'default', name: 'bench-reuse-sa' });
    await core.createNamespacedServiceAccountToken({ namespace: 'default', name: 'bench-reuse-sa', body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    directMs.push(performance.now() - started);
  }
  log(`mint: webhook median ${median(mintMs).toFixed(1)} ms, direct client-node median ${median(directMs).toFixed(1)} ms`);

  // 3. Scale: many requests in one target cluster, reconciled by the driver (no client limits) with
  // parallel workers: the scale mode's webhook path, at the bench's size.
  const scaleContext = { host: env.host, target, hostConfig, install, webhook, network, log };
  const scaleBench = new Scale(scaleContext);
  const scaleDriver = await MetacontrollerDriver.start({ host: hostConfig, network, informers: 'watch' });
  const scaleRun = await scaleBench.webhookPath(scaleDriver, await scaleBench.createRequests('scale', scaleRequests, '1h'), scaleWorkers);
  scaleDriver.close();
  scaleBench.close();
  const scaleSeconds = scaleRun.seconds;
  const scaleCallsPerRequest = scaleRun.webhookApiCallsPerRequest;
  log(`scale: ${scaleRequests} valid Secrets in ${scaleSeconds.toFixed(1)} s, ${scaleCallsPerRequest.toFixed(2)} API calls per request`);

  // 4. Memory: RSS before and after many reuse-path syncs.
  const rssBefore = await rssMb(webhook.pid, 'VmRSS');
  const memoryResult = await load(webhookPort, reuseBody, { amount: memorySyncs });
  const rssAfter = await rssMb(webhook.pid, 'VmRSS');
  const peakRssMb = await rssMb(webhook.pid, 'VmHWM');
  const rssGrowthMbPer100kSyncs = ((rssAfter - rssBefore) * 100_000) / memorySyncs;
  log(`memory: RSS ${rssBefore.toFixed(1)} -> ${rssAfter.toFixed(1)} MB over ${memoryResult.requests.total} syncs (${summary(memoryResult).errors} errors); peak ${peakRssMb.toFixed(1)} MB`);

  driver.close();
  await baseline.stop();
  const scale = withScale
    ? await runScale(scaleContext, idleRssMb)
    : undefined;
  await webhook.stop();
  // Fleet: requests over many DPUClusters, each its own API server address (bench/fleet.ts), in webhook processes of its own.
  const fleet = withScale ? await runFleet({ ...env, log }) : undefined;
  await stopAllControlPlanes();

  const results = {
    machine: { cores: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
    reuse: { webhook: reuse, baseline: base, apiCallsPerSync: reuseCallsPerSync, webhookCpuMsPerSync: reuseCpuMsPerSync, connections, seconds: loadSeconds },
    mint: { webhookMedianMs: median(mintMs), directClientNodeMedianMs: median(directMs), samples: mintSamples },
    scale: { requests: scaleRequests, workers: scaleWorkers, seconds: scaleSeconds, apiCallsPerRequest: scaleCallsPerRequest },
    memory: { syncs: memoryResult.requests.total, errors: summary(memoryResult).errors, rssBeforeMb: rssBefore, rssAfterMb: rssAfter, peakRssMb },
    coldStartMs,
    idleRssMb,
  };
  await writeFile(join(root, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
  if (scale) await writeFile(join(root, 'bench/scale-results.json'), `${JSON.stringify({ ...scale, fleet }, null, 2)}\n`);

  const round = (value: number, digits = 2) => Number(value.toFixed(digits));
  console.log('| measure | webhook | baseline | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| reuse-path syncs/s (${connections} connections) | ${reuse.requestsPerSecond} | ${base.requestsPerSecond} | ${round(reuse.requestsPerSecond / base.requestsPerSecond)} |`);
  console.log(`| reuse-path p50 / p99 ms | ${reuse.p50Ms} / ${reuse.p99Ms} | ${base.p50Ms} / ${base.p99Ms} | |`);
  console.log(`| reuse-path errors | ${reuse.errors} | ${base.errors} | |`);
  console.log(`| mint latency median ms | ${round(median(mintMs), 1)} | ${round(median(directMs), 1)} (client-node direct) | ${round(median(mintMs) / median(directMs))} |`);
  console.log(`| ${scaleRequests} requests to valid Secrets, s | ${round(scaleSeconds, 1)} | | |`);
  console.log(`| API calls per request (scale) / per reuse sync | ${round(scaleCallsPerRequest)} / ${round(reuseCallsPerSync, 3)} | | |`);
  console.log(`| peak RSS MB / growth per 100k syncs MB | ${round(peakRssMb, 1)} / ${round(rssGrowthMbPer100kSyncs, 1)} | | |`);
  console.log(`| cold start ms (median of ${coldStartRuns}) | ${round(median(coldStartMs), 0)} | | |`);
  console.log(JSON.stringify({
    reuseThroughputRatio: round(reuse.requestsPerSecond / base.requestsPerSecond),
    reuseP99Ms: reuse.p99Ms,
    mintLatencyRatio: round(median(mintMs) / median(directMs)),
    scaleSecondsFor1000: round(scaleSeconds * (1000 / scaleRequests), 1),
    peakRssMb: round(peakRssMb, 1),
    rssGrowthMbPer100kSyncs: round(rssGrowthMbPer100kSyncs, 1),
    coldStartMs: round(median(coldStartMs), 0),
    idleRssMb: round(idleRssMb, 1),
    ...(scale ? Object.fromEntries(Object.entries(scale.headline).map(([key, value]) => [key, round(value, 2)])) : {}),
    ...(fleet ? Object.fromEntries(Object.entries(fleet.headline).map(([key, value]) => [key, round(value, 2)])) : {}),
    cores: cpus().length,
  }));
}

// The run ends here even if something it measured left a handle open (a bench:scale run was
// seen to stay alive after printing its results); the control planes are stopped by then.
main().then(() => process.exit(0), async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAllControlPlanes();
  process.exit(1);
});
