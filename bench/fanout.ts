// What one DPUCluster update costs (issue 18 point 3, issue 20 point 3): N requests name one
// DPUCluster (a cluster of their own, so the bench's other requests stay out of it), all Ready
// and quiet; then the DPUCluster's status changes, as DPF's DPUCluster controller changes it.
// Measured: Metacontroller's API calls, hook calls, the webhook's own API calls and CPU, the
// bench process's CPU (the driver: Metacontroller's stand-in), and the time until quiet (every
// enqueued request synced, the queue empty). Twice: with the customize answers fresh, and with
// the driver's clock moved past their 20-minute expiry.
//
// With the shipped CompositeController (no customize hook: the webhook watches DPUClusters
// itself) Metacontroller follows no DPUCluster, and an update costs nothing: 0 calls. With
// FANOUT_COMPARE_RELATED=1 the same is measured again on the CompositeController of 0.3.x,
// whose customize hook named each request's DPUCluster (harness/metacontroller/
// related-controller.ts): every request naming it is enqueued and synced (a first change warms
// the driver's customize cache for the parents it never synced; the next is measured), and
// once the answers expired each parent's customize is called again, inside the event handler,
// for every parent of the controller.
//   npm run bench:scale runs it at SCALE_FANOUT_SIZES (default 1000) after the rest.
//   Alone: npx tsx bench/fanout.ts         FANOUT_SIZES=1000,10000 (default 1000), FANOUT_COMPARE_RELATED=1
import { pathToFileURL } from 'node:url';
import type { KubeObject } from '../server/api.js';
import { KubeRestClient } from '../server/kube/rest.js';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { registerDpuCluster, updateDpuClusterStatus } from '../harness/dpucluster.js';
import { customizeCacheTtlMs, type MetacontrollerDriver } from '../harness/metacontroller/driver.js';
import { startRelatedController } from '../harness/metacontroller/related-controller.js';
import { serviceNetwork } from '../harness/webhook-env.js';
import { highSettings, Scale, type ScaleContext } from './scale-steps.js';
import { buildWebhook, cpuMs, log, startBenchEnvironment } from './setup.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectionOf } from '../harness/connection.js';

const namespace = 'default';
const round = (value: number, places = 2) => Math.round(value * 10 ** places) / 10 ** places;

const hookCounts = (driver: MetacontrollerDriver) => {
  const counts: Record<string, number> = {};
  for (const call of driver.calls) counts[call.hook] = (counts[call.hook] ?? 0) + 1;
  return counts;
};

/** One status change of the DPUCluster, until quiet. */
async function oneUpdate(context: ScaleContext, scale: Scale, host: KubeRestClient, driver: MetacontrollerDriver, cluster: string, requests: number, phase: string) {
  const hooksBefore = hookCounts(driver);
  const [apiBefore, verbsBefore, enqueuesBefore] = [driver.api.total, { ...driver.api.calls }, driver.relatedEnqueues];
  const webhookApiBefore = await scale.webhookApiCalls();
  const [webhookCpuBefore, benchCpuBefore] = [await cpuMs(context.webhook.pid), process.cpuUsage()];
  const started = performance.now();
  const patched = await updateDpuClusterStatus(host, namespace, cluster, phase, `bench ${phase}`) as KubeObject;
  await driver.relatedObserved(patched);
  const secondsToEnqueued = (performance.now() - started) / 1_000;
  const syncs = await driver.drain(highSettings.workers);
  const secondsUntilQuiet = (performance.now() - started) / 1_000;
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const webhookCpuMs = await cpuMs(context.webhook.pid) - webhookCpuBefore;
  const hooksAfter = hookCounts(driver);
  const hookCalls: Record<string, number> = Object.fromEntries(Object.entries(hooksAfter)
    .map(([hook, count]) => [hook, count - (hooksBefore[hook] ?? 0)] as const).filter(([, count]) => count > 0));
  const hookTotal = Object.values(hookCalls).reduce((sum, count) => sum + count, 0);
  const metacontrollerApiCalls = driver.api.total - apiBefore;
  return {
    requests, syncs, enqueued: driver.relatedEnqueues - enqueuesBefore,
    metacontrollerApiCalls,
    metacontrollerApiCallsByVerb: Object.fromEntries(Object.entries(driver.api.calls).map(([verb, count]) => [verb, count - (verbsBefore[verb] ?? 0)]).filter(([, count]) => count)),
    hookCalls,
    webhookApiCalls: await scale.webhookApiCalls() - webhookApiBefore,
    webhookCpuMs: round(webhookCpuMs, 0),
    webhookCpuMsPerSync: syncs ? round(webhookCpuMs / syncs) : 0,
    driverCpuMs: round((benchCpu.user + benchCpu.system) / 1_000, 0),
    secondsToEnqueued: round(secondsToEnqueued),
    secondsUntilQuiet: round(secondsUntilQuiet),
    /** Metacontroller API calls + hook calls per 1,000 requests on the cluster, for this one update. */
    callsPer1k: round(((metacontrollerApiCalls + hookTotal) / requests) * 1_000, 0),
  };
}

/**
 * `requests` requests on a DPUCluster of their own, made Ready through a driver of their own
 * (QPS 500, burst 1000, 16 workers: the bench's high setting), then one update with the
 * customize answers fresh and one with them expired. `controllerPath`: the CompositeController
 * the driver follows (default: the shipped one, which has no customize hook).
 */
export async function fanoutPhase(context: ScaleContext, scale: Scale, requests: number, controllerPath?: string) {
  const cluster = `fanout-${requests}-${Date.now().toString(36)}`;
  await registerDpuCluster(context.hostConfig, context.target, { name: cluster });
  let offsetMs = 0;
  const driver = await scale.driver(highSettings, () => Date.now() + offsetMs, controllerPath);
  const host = new KubeRestClient(connectionOf(context.hostConfig), { timeoutMs: 60_000 });
  try {
    const setupStarted = performance.now();
    const names = await scale.createRequests(`fan${controllerPath ? 'rel' : ''}${requests}`, requests, '1h', cluster);
    await scale.webhookPath(driver, names, highSettings.workers);
    // The Pending answers' 5 s requeues, then whatever they enqueue: quiet before the update.
    await sleep(6_000);
    await driver.drain(highSettings.workers);
    const setupSeconds = (performance.now() - setupStarted) / 1_000;
    context.log(`fanout: ${requests} requests on ${cluster} Ready and quiet in ${setupSeconds.toFixed(0)} s; one status update`);
    // A first update: this driver has synced only these requests, so under a controller with customize its
    // handler asks customize for every other parent the host holds (Metacontroller, which syncs them all,
    // has their answers already).
    const warmUp = await oneUpdate(context, scale, host, driver, cluster, requests, 'Creating');
    context.log(`fanout: ${requests}, warm-up (customize asked for the parents this driver never synced): ${JSON.stringify(warmUp)}`);
    const fresh = await oneUpdate(context, scale, host, driver, cluster, requests, 'NotReady');
    context.log(`fanout: ${requests}, customize cached: ${JSON.stringify(fresh)}`);
    offsetMs = customizeCacheTtlMs + 1_000;
    const expired = await oneUpdate(context, scale, host, driver, cluster, requests, 'Ready');
    context.log(`fanout: ${requests}, customize expired: ${JSON.stringify(expired)}`);
    return { requests, cluster, setupSeconds: round(setupSeconds, 1), settings: highSettings, warmUp, fresh, expired };
  } finally {
    host.close();
    driver.close();
  }
}

export const fanoutSizes = (text: string | undefined) => (text ?? '1000').split(',').map(Number).filter((size) => size > 0);

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = performance.now();
  await buildWebhook();
  const env = await startBenchEnvironment();
  const webhook = await env.startWebhook();
  const context: ScaleContext = { ...env, webhook, network: await serviceNetwork(webhook.port), log };
  const scale = new Scale(context);
  const results = [];
  for (const size of fanoutSizes(process.env.FANOUT_SIZES)) results.push(await fanoutPhase(context, scale, size));
  const related = [];
  if (process.env.FANOUT_COMPARE_RELATED === '1') {
    const controller = await startRelatedController();
    try {
      for (const size of fanoutSizes(process.env.FANOUT_SIZES)) {
        log(`fanout: ${size} again, on the 0.3.x CompositeController (customize names the DPUCluster)`);
        related.push(await fanoutPhase(context, scale, size, controller.controllerPath));
      }
    } finally {
      await controller.close();
    }
  }
  scale.close();
  await webhook.stop();
  await stopAllControlPlanes();
  log(`fanout: done in ${((performance.now() - started) / 1_000).toFixed(0)} s`);
  console.log(JSON.stringify({
    fanout: results, fanoutCallsPer1kOnUpdate: results[0]?.fresh.callsPer1k,
    ...(related[0] ? { fanoutRelated: related, fanoutCallsPer1kOnUpdateRelated: related[0].fresh.callsPer1k } : {}),
  }));
  process.exit(0);
}
