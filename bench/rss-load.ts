// The webhook's memory after new requests: RSS_LOAD_REQUESTS (2,000) requests made and reconciled
// through the driver at the high settings (bench/scale-steps.ts's webhook path), then VmRSS, VmHWM and the
// heap read. For this build and every build in RSS_LOAD_ENTRIES (other main.js, comma-separated),
// each in fresh control planes, so no build starts with another's ServiceAccounts and Secrets.
// A shorter stand-in for bench:scale's 10,000-request RSS. RSS_LOAD_THIS=false: the other builds only.
//   RSS_LOAD_ENTRIES=/path/to/other/dist/server/main.js npx tsx bench/rss-load.ts
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { serviceNetwork } from '../harness/webhook-env.js';
import { highSettings, Scale } from './scale-steps.js';
import { buildWebhook, log, rssMb, startBenchEnvironment } from './setup.js';

const requests = Number(process.env.RSS_LOAD_REQUESTS ?? 2_000);
/** undefined: this build. */
const entries = [...(process.env.RSS_LOAD_THIS === 'false' ? [] : [undefined]), ...(process.env.RSS_LOAD_ENTRIES ?? '').split(',').filter(Boolean)];

await buildWebhook();
console.log(`| build | requests | seconds | VmRSS MB | VmHWM MB | heap used MB |`);
console.log('|---|---|---|---|---|---|');
for (const entry of entries) {
  const env = await startBenchEnvironment();
  const webhook = await env.startWebhook([], entry);
  const scale = new Scale({ ...env, webhook, network: await serviceNetwork(webhook.port), log });
  const driver = await scale.driver(highSettings);
  const names = await scale.createRequests('rss', requests, '1h');
  const { seconds } = await scale.webhookPath(driver, names, highSettings.workers);
  const [rss, hwm, heap] = [await rssMb(webhook.pid, 'VmRSS'), await rssMb(webhook.pid, 'VmHWM'), await scale.metric('nodejs_heap_size_used_bytes') / 2 ** 20];
  console.log(`| ${entry ?? 'this build'} | ${requests} | ${seconds.toFixed(1)} | ${rss.toFixed(1)} | ${hwm.toFixed(1)} | ${heap.toFixed(1)} |`);
  driver.close();
  scale.close();
  await webhook.stop();
  await stopAllControlPlanes();
}
process.exit(0);
