// The reuse-path sync without HTTP: the sync hook called in this process, in a loop, on the
// body Metacontroller sends, against the same control planes. What the hook's own steps cost
// per call, apart from TLS, express, the log line and the metrics.
//   npx tsx bench/sync-loop.ts     SYNC_LOOP_CALLS (20000); SYNC_LOOP_CONCURRENCY (1);
//   SYNC_LOOP_PROFILE=<file.cpuprofile> to profile the loop
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Session } from 'node:inspector/promises';
import { hookDeadline } from '../server/hooks/deadline.js';
import { sync } from '../server/hooks/sync.js';
import { silentLogger } from '../server/log.js';
import type { SyncRequest } from '../server/metacontroller.js';
import { wireWebhook } from '../server/webhook.js';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { buildWebhook, log, startBenchEnvironment, webhookWithReuseBody } from './setup.js';
import { connectionOf } from '../harness/connection.js';

const calls = Number(process.env.SYNC_LOOP_CALLS ?? 20_000);
const profilePath = process.env.SYNC_LOOP_PROFILE;
/** Syncs in flight at once, as the server has with many connections. */
const concurrency = Number(process.env.SYNC_LOOP_CONCURRENCY ?? 1);

async function main(): Promise<void> {
  await buildWebhook();
  const env = await startBenchEnvironment();
  const { webhook: webhookProcess, body } = await webhookWithReuseBody(env);
  await webhookProcess.stop();

  // The webhook's own wiring, without a socket: only its hook context is used.
  const webhook = await wireWebhook({
    config: { port: 0, remoteTimeoutMs: 10_000, maxBodyBytes: 4 * 1024 * 1024, filePollIntervalMs: 5_000, shutdownTimeoutMs: 0 },
    log: silentLogger, hostConnection: connectionOf(env.hostConfig), recordEvents: false,
  });
  const { context } = webhook;
  const once = async () => {
    const request = JSON.parse(body) as SyncRequest;
    return sync(request, context, hookDeadline(request.controller, 'sync', Date.now()));
  };
  // The first syncs fill the target's ServiceAccount cache (list + watch).
  for (let attempt = 0; (await once()).decision !== 'reused'; attempt++) {
    if (attempt > 100) throw new Error('the loop never reached the reuse path');
    await sleep(100);
  }
  for (let call = 0; call < calls / 4; call++) await once();

  const parseStarted = performance.now();
  for (let call = 0; call < calls; call++) JSON.parse(body);
  const parseUs = ((performance.now() - parseStarted) * 1_000) / calls;

  const session = new Session();
  if (profilePath) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next++ < calls) await once();
  }));
  const cpu = process.cpuUsage(cpuStarted);
  const wallUs = ((performance.now() - started) * 1_000) / calls;
  if (profilePath) {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(profilePath, JSON.stringify(profile));
    session.disconnect();
    log(`profile: ${profilePath}`);
  }
  console.log(`${calls} reuse-path syncs in-process, ${concurrency} at a time: ${wallUs.toFixed(1)} µs each (CPU ${((cpu.user + cpu.system) / calls).toFixed(1)} µs), `
    + `of which JSON.parse of the ${body.length} B body ${parseUs.toFixed(1)} µs`);
  webhook.close();
  await stopAllControlPlanes();
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAllControlPlanes();
  process.exit(1);
});
