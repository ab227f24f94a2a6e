// Where the API servers' time goes at scale: each path (the yardstick's direct writes, then the
// webhook path through the driver) at 1,000 and then 10,000 requests, with every process's CPU
// per request and, from each kube-apiserver's own apiserver_request_duration_seconds, the calls
// per request by verb and resource and how long the server took for each (wall time, so on 2
// shared cores it includes waiting for a core).
//   npx tsx bench/api-server-calls.ts        about 12 minutes; API_CALLS_SMALL (1000), API_CALLS_LARGE (10000)
import { request } from 'node:https';
import { stopAllControlPlanes, type ControlPlane } from '../harness/control-plane.js';
import { serviceNetwork } from '../harness/webhook-env.js';
import { highSettings, Scale } from './scale-steps.js';
import { buildWebhook, log, startBenchEnvironment } from './setup.js';

const sizes = [Number(process.env.API_CALLS_SMALL ?? 1_000), Number(process.env.API_CALLS_LARGE ?? 10_000)];

type Calls = Map<string, { count: number; seconds: number }>;

function scrape(plane: ControlPlane): Promise<string> {
  return new Promise((resolve, reject) => {
    const { caCertPem: ca, adminCertPem: cert, adminKeyPem: key } = plane.pki;
    request(`${plane.server}/metrics`, { ca, cert, key }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    }).on('error', reject).end();
  });
}

/** Calls by "VERB resource[/subresource]"; long-running WATCHes are left out (their duration is the watch's life). */
async function calls(plane: ControlPlane): Promise<Calls> {
  const byCall: Calls = new Map();
  for (const [, part, labelText, value] of (await scrape(plane)).matchAll(/^apiserver_request_duration_seconds_(sum|count)\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...labelText!.matchAll(/(\w+)="([^"]*)"/g)].map(([, name, text]) => [name!, text!]));
    if (labels.verb === 'WATCH') continue;
    const call = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    const entry = byCall.get(call) ?? { count: 0, seconds: 0 };
    if (part === 'sum') entry.seconds += Number(value);
    else entry.count += Number(value);
    byCall.set(call, entry);
  }
  return byCall;
}

function perRequest(before: Calls, after: Calls, requests: number) {
  return [...after].map(([call, { count, seconds }]) => {
    const earlier = before.get(call) ?? { count: 0, seconds: 0 };
    const calls = count - earlier.count;
    return { call, perRequest: calls / requests, msEach: calls ? ((seconds - earlier.seconds) * 1_000) / calls : 0 };
  }).filter(({ perRequest: share }) => share >= 0.05).sort((a, b) => b.perRequest * b.msEach - a.perRequest * a.msEach);
}

await buildWebhook();
const env = await startBenchEnvironment();
const webhook = await env.startWebhook();
const scale = new Scale({ ...env, webhook, network: await serviceNetwork(webhook.port), log });
const driver = await scale.driver(highSettings);
const report: Record<string, unknown>[] = [];
for (const path of ['yardstick', 'webhook'] as const) {
  for (const size of sizes) {
    const names = await scale.createRequests(`${path}-${size}`, size, '1h');
    const before = [await calls(env.host), await calls(env.target)] as const;
    const { seconds, cpuMsPerRequest } = path === 'webhook'
      ? await scale.webhookPath(driver, names, highSettings.workers)
      : await scale.rawPath(names, highSettings.workers);
    const after = [await calls(env.host), await calls(env.target)] as const;
    const row = { path, requests: size, seconds, cpuMsPerRequest, host: perRequest(before[0], after[0], size), target: perRequest(before[1], after[1], size) };
    report.push(row);
    log(`${path}, ${size} requests: ${seconds.toFixed(1)} s, CPU ms per request ${JSON.stringify(cpuMsPerRequest)}`);
    for (const cluster of ['host', 'target'] as const) {
      for (const { call, perRequest: share, msEach } of row[cluster]) log(`  ${cluster} ${call}: ${share.toFixed(2)} per request, ${msEach.toFixed(1)} ms each`);
    }
  }
}
console.log(JSON.stringify(report));
driver.close();
scale.close();
await webhook.stop();
await stopAllControlPlanes();
process.exit(0);
