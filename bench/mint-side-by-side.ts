// The mint path of two builds side by side: this worktree's webhook and another build
// (PROFILE_BEFORE_ENTRY), against the same host and target control planes, taking turns sample
// by sample so that both see the same API servers under the same background load.
//   PROFILE_BEFORE_ENTRY=<other build>/dist/server/main.js npx tsx bench/mint-side-by-side.ts
// MINT_SAMPLES (60) timed per build, after MINT_WARM_UP (5) untimed; MINT_FRESH_UID=1 gives every
// sample's parent a new UID (see below); PROFILE_BEFORE_FLAGS and
// PROFILE_BEFORE_RELATED=1 as in bench/profile-reuse.ts (0.3.0 and earlier read the DPUCluster
// from the body's related objects; without it they GET it from the host at every sync).
//
// A sample is bench/run.ts's mint path: the request's body without status and with no Secret
// child, as for a request seen for the first time, answered with one Secret or the run fails.
// Each build has a request of its own (and so a ServiceAccount and anchors of its own): the next
// token's anchor is named after the request's UID and ServiceAccount (credential/token-anchors.ts
// anchorNameFor), so on a shared request each build would find and revoke the anchor the other
// just made. Apart, each sample of a build finds only its own previous anchor, as in run.ts: since
// issue 24's mint limit (after 0.3.0) that is the path of a token minted and never seen (create 409,
// read, delete, create).
// With MINT_FRESH_UID=1 the anchor name is new at every sample: a first mint, the anchor made at once.
import { CoreV1Api } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { MetacontrollerDriver } from '../harness/metacontroller/driver.js';
import { serviceNetwork } from '../harness/webhook-env.js';
import type { WebhookProcess } from '../harness/webhook-process.js';
import type { SyncRequest, SyncResponse } from '../server/metacontroller.js';
import { buildWebhook, cpuMs, log, median, metricSum, reuseRequestBody, startBenchEnvironment, withRelatedDpuCluster,
  type BenchEnvironment } from './setup.js';

const samples = Number(process.env.MINT_SAMPLES ?? 60);
const warmUp = Number(process.env.MINT_WARM_UP ?? 5);
const beforeEntry = process.env.PROFILE_BEFORE_ENTRY;
const beforeFlags = (process.env.PROFILE_BEFORE_FLAGS ?? '').split(' ').filter(Boolean);
const beforeRelated = process.env.PROFILE_BEFORE_RELATED === '1';
const freshUid = process.env.MINT_FRESH_UID === '1';

interface Build {
  name: string;
  webhook: WebhookProcess;
  /** The mint-path body of this build's own request. */
  body: string;
  latencyMs: number[];
  cpuMs: number;
  apiCalls: number;
}

/** The p-th percentile (nearest rank) of `values`. */
const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * values.length) - 1)]!;

/** The build's own count of its API calls: from METRICS_PORT, else (0.2.0 has none) from /metrics on the hook port. */
async function apiCallCount(env: BenchEnvironment, webhook: WebhookProcess): Promise<number> {
  const text = await fetch(webhook.metricsUrl).then((response) => response.text(), async () => {
    const answer = await env.install.call(webhook.port, '/metrics');
    return answer.status === 200 ? answer.body : '';
  });
  return text ? metricSum(text, 'dpu_credential_kube_requests_total') : Number.NaN;
}

/**
 * The request `name` reconciled twice through `webhook` (its ServiceAccount, first anchor and Secret
 * made by the build measured on it), then its body as run.ts's mint path sends it: no status, no Secret.
 */
async function mintBody(env: BenchEnvironment, webhook: WebhookProcess, name: string, related: boolean): Promise<string> {
  const driver = await MetacontrollerDriver.start({ host: env.hostConfig, network: await serviceNetwork(webhook.port) });
  let reuse: string;
  try {
    reuse = await reuseRequestBody(env, driver, name);
  } finally {
    driver.close();
  }
  // A parent of another UID finds that Secret, which the reconciles made, not its own (SecretNotOwned): gone, as for a new request.
  if (freshUid) await env.hostConfig.makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace: 'default', name });
  const parsed = JSON.parse(reuse) as SyncRequest;
  const { status: _status, ...parent } = parsed.parent;
  const body = JSON.stringify({ ...parsed, parent, children: { 'Secret.v1': {} } } satisfies SyncRequest);
  return related ? withRelatedDpuCluster(env, body) : body;
}

/** The body with a parent UID never seen: the next anchor's name is new, so the mint makes it at once. */
function withNewUid(body: string): string {
  const request = JSON.parse(body) as SyncRequest;
  return JSON.stringify({ ...request, parent: { ...request.parent, metadata: { ...request.parent.metadata, uid: randomUUID() } } });
}

/** One mint-path sync, timed from the request to the whole answer; anything but one Secret child fails the run. */
async function mintOnce(env: BenchEnvironment, build: Build): Promise<number> {
  const body = freshUid ? withNewUid(build.body) : build.body;
  const started = performance.now();
  const answer = await env.install.call(build.webhook.port, '/sync', { method: 'POST', body });
  const elapsedMs = performance.now() - started;
  const response = answer.status === 200 ? JSON.parse(answer.body) as SyncResponse : undefined;
  if (response?.children.length !== 1 || response.children[0]?.kind !== 'Secret') {
    throw new Error(`${build.name}: the mint-path sync did not answer with one Secret (HTTP ${answer.status}): ${answer.body.slice(0, 500)}`);
  }
  return elapsedMs;
}

/** Sample i to each build in turn, the order reversed every other sample, so that neither always goes first. */
async function alternate(env: BenchEnvironment, builds: Build[]): Promise<void> {
  for (let round = 0; round < warmUp; round++) for (const build of builds) await mintOnce(env, build);
  const cpuBefore = await Promise.all(builds.map((build) => cpuMs(build.webhook.pid)));
  const callsBefore = await Promise.all(builds.map((build) => apiCallCount(env, build.webhook)));
  for (let sample = 0; sample < samples; sample++) {
    for (const build of sample % 2 === 0 ? builds : [...builds].reverse()) build.latencyMs.push(await mintOnce(env, build));
  }
  for (const [index, build] of builds.entries()) {
    build.cpuMs = (await cpuMs(build.webhook.pid)) - cpuBefore[index]!;
    build.apiCalls = (await apiCallCount(env, build.webhook)) - callsBefore[index]!;
    log(`${build.name} (pid ${build.webhook.pid}): ${build.cpuMs} ms CPU, ${build.apiCalls} API calls over ${samples} timed samples`);
  }
}

function report(builds: Build[]): void {
  console.log('| build | median ms | p90 ms | CPU ms per mint | API calls per mint (its own count) |');
  console.log('|---|---|---|---|---|');
  for (const build of builds) {
    console.log(`| ${build.name} | ${median(build.latencyMs).toFixed(1)} | ${percentile(build.latencyMs, 90).toFixed(1)} | `
      + `${(build.cpuMs / samples).toFixed(2)} | ${Number.isNaN(build.apiCalls) ? 'n/a' : (build.apiCalls / samples).toFixed(2)} |`);
  }
  const [head, other] = builds;
  if (!head || !other) return;
  console.log(`\nratio ${head.name} / ${other.name}: median ${(median(head.latencyMs) / median(other.latencyMs)).toFixed(2)}, `
    + `p90 ${(percentile(head.latencyMs, 90) / percentile(other.latencyMs, 90)).toFixed(2)}, CPU ${(head.cpuMs / other.cpuMs).toFixed(2)}`);
}

async function main(): Promise<void> {
  if (!beforeEntry) throw new Error('PROFILE_BEFORE_ENTRY=<other build>/dist/server/main.js: the build to compare with');
  await buildWebhook();
  const env = await startBenchEnvironment();
  const head = await env.startWebhook();
  const before = await env.startWebhook(beforeFlags, beforeEntry);
  const builds: Build[] = [
    { name: 'webhook', webhook: head, body: await mintBody(env, head, 'bench-mint-head', false), latencyMs: [], cpuMs: 0, apiCalls: 0 },
    { name: 'webhook before', webhook: before, body: await mintBody(env, before, 'bench-mint-before', beforeRelated), latencyMs: [], cpuMs: 0, apiCalls: 0 },
  ];
  log(`mint path: ${samples} samples per build after ${warmUp} untimed, alternating; other build ${beforeEntry}${beforeRelated ? ' (related DPUCluster)' : ''}`
    + `${freshUid ? ', a new parent UID at every sample' : ''}`);
  await alternate(env, builds);
  report(builds);
  await Promise.all([head.stop(), before.stop()]);
  await stopAllControlPlanes();
}

main().then(() => process.exit(0), async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAllControlPlanes();
  process.exit(1);
});
