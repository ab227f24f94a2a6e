// Where the reuse path's CPU goes: the webhook against the baseline side by side (short
// alternating rounds, ratio of the sums), then the webhook alone under --cpu-prof, its
// profile summarised by function and by package.
//   npx tsx bench/profile-reuse.ts                 measure and profile
//   npx tsx bench/profile-reuse.ts <file.cpuprofile>  summarise an existing profile
// PROFILE_ROUNDS (3), PROFILE_ROUND_SECONDS (3), PROFILE_SECONDS (5); PROFILE_SECONDS=0 skips the profile.
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAllControlPlanes } from '../spec/support/control-plane.js';
import { MetacontrollerDriver } from '../spec/support/metacontroller/driver.js';
import { serviceNetwork } from '../spec/support/webhook-env.js';
import { buildWebhook, connections, cpuMs, log, reuseRequestBody, root, startBaseline, startBenchEnvironment } from './setup.js';

const rounds = Number(process.env.PROFILE_ROUNDS ?? 3);
const roundSeconds = Number(process.env.PROFILE_ROUND_SECONDS ?? 3);
const profileSeconds = Number(process.env.PROFILE_SECONDS ?? 5);
const warmUpSeconds = 1;

/** The parts of a V8 .cpuprofile this summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Only the samples from `skipMs` after the first one in the sync hook on: start-up (module
 * loading, the first lists) and the warm-up load are not the reuse path in steady state.
 */
function steadyState(profile: CpuProfile, skipMs: number): CpuProfile {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const inSync = (id: number | undefined): boolean => {
    for (let at = id; at !== undefined; at = parent.get(at)) {
      if (byId.get(at)?.callFrame.url.endsWith('/dist/server/hooks/sync.js')) return true;
    }
    return false;
  };
  let elapsedUs = 0;
  let firstSyncUs: number | undefined;
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  profile.samples.forEach((id, index) => {
    elapsedUs += profile.timeDeltas[index] ?? 0;
    if (firstSyncUs === undefined && inSync(id)) firstSyncUs = elapsedUs;
    if (firstSyncUs !== undefined && elapsedUs - firstSyncUs >= skipMs * 1_000) {
      samples.push(id);
      timeDeltas.push(profile.timeDeltas[index] ?? 0);
    }
  });
  return { nodes: profile.nodes, samples, timeDeltas };
}

/** Which package a script belongs to: node internals, a dependency, or a file of ours. */
function packageOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8 builtins)';
  if (url.startsWith('node:')) return 'node internals';
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dependency) return dependency[1]!;
  const ours = /\/dist\/(server\/.*)\.js$/.exec(url);
  if (ours) return `ours: ${ours[1]}`;
  return url;
}

const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(root, '').replace(/^.*node_modules\//, '');

function summarise(profile: CpuProfile, top = 25): string {
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  // Inclusive time of our functions: a function counted once per sample, however deep it recurs.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const oursInclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
      if (!/\/dist\/server\//.test(url)) continue;
      const key = `${functionName || '(anonymous)'}  ${shortUrl(url)}:${lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      oursInclusive.set(key, (oursInclusive.get(key) ?? 0) + us);
    }
  }
  const byFunction = new Map<string, { us: number; pkg: string }>();
  const byPackage = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    totalUs += us;
    const pkg = packageOf(url, functionName);
    // lineNumber is 0-based in the profile.
    const key = `${functionName || '(anonymous)'}  ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ''}`;
    const entry = byFunction.get(key) ?? { us: 0, pkg };
    entry.us += us;
    byFunction.set(key, entry);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  }
  const percent = (us: number) => `${((100 * us) / totalUs).toFixed(1)}%`;
  const ms = (us: number) => (us / 1000).toFixed(0);
  const lines = [`busy ${ms(totalUs)} ms, idle ${ms(idleUs)} ms`, '', `| self ms | share | function (url:line) |`, '|---|---|---|'];
  for (const [key, { us }] of [...byFunction].sort((a, b) => b[1].us - a[1].us).slice(0, top)) {
    lines.push(`| ${ms(us)} | ${percent(us)} | ${key.replaceAll('|', '\\|')} |`);
  }
  lines.push('', '| total ms | share | our function, with what it calls (url:line) |', '|---|---|---|');
  for (const [key, us] of [...oursInclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${ms(us)} | ${percent(us)} | ${key} |`);
  }
  // Our files by name, everything else by package; then our files together.
  const oursUs = [...byPackage].filter(([pkg]) => pkg.startsWith('ours: ')).reduce((sum, [, us]) => sum + us, 0);
  lines.push('', '| self ms | share | package |', '|---|---|---|');
  // Packages under 0.1% are left out.
  for (const [pkg, us] of [...byPackage, ['ours: all of server/', oursUs] as const].sort((a, b) => b[1] - a[1]).filter(([, us]) => us >= totalUs / 1000)) {
    lines.push(`| ${ms(us)} | ${percent(us)} | ${pkg} |`);
  }
  return lines.join('\n');
}

async function measureAndProfile(): Promise<void> {
  await buildWebhook();
  const env = await startBenchEnvironment();
  let webhook = await env.startWebhook();
  const driver = await MetacontrollerDriver.start({ host: env.hostConfig, network: await serviceNetwork(webhook.port) });
  const body = await reuseRequestBody(env, driver);
  driver.close();
  const responseBytes = (await env.install.call(webhook.port, '/sync', { method: 'POST', body })).body.length;
  const baseline = await startBaseline(env, responseBytes);
  log(`reuse path: request ${body.length} B, response ${responseBytes} B, ${connections} connections, ${rounds} rounds of ${roundSeconds} s each`);

  // Warm both up (JIT, TLS session set-up), then alternate so both see the same background load.
  await env.load(baseline.port, body, { duration: 1 });
  await env.load(webhook.port, body, { duration: 1 });
  const totals = { webhook: { requests: 0, seconds: 0, cpuMs: 0, errors: 0 }, baseline: { requests: 0, seconds: 0, cpuMs: 0, errors: 0 } };
  for (let round = 0; round < rounds; round++) {
    const perRound: string[] = [];
    for (const [name, port, pid] of [['baseline', baseline.port, baseline.process.pid], ['webhook', webhook.port, webhook.pid]] as const) {
      const cpuBefore = await cpuMs(pid);
      const result = await env.load(port, body, { duration: roundSeconds });
      const total = totals[name];
      total.cpuMs += (await cpuMs(pid)) - cpuBefore;
      total.requests += result.requests.total;
      total.seconds += result.duration;
      total.errors += result.errors + result.non2xx + result.timeouts;
      perRound.push(`${name} ${Math.round(result.requests.total / result.duration)}/s`);
    }
    log(`round ${round + 1}: ${perRound.join(', ')}`);
  }
  const rate = (total: typeof totals.webhook) => total.requests / total.seconds;
  const cpuPerRequest = (total: typeof totals.webhook) => total.cpuMs / total.requests;
  console.log('| measure | webhook | baseline | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| reuse-path syncs/s | ${rate(totals.webhook).toFixed(0)} | ${rate(totals.baseline).toFixed(0)} | ${(rate(totals.webhook) / rate(totals.baseline)).toFixed(2)} |`);
  console.log(`| server CPU ms per sync | ${cpuPerRequest(totals.webhook).toFixed(3)} | ${cpuPerRequest(totals.baseline).toFixed(3)} | ${(cpuPerRequest(totals.baseline) / cpuPerRequest(totals.webhook)).toFixed(2)} |`);
  console.log(`| errors | ${totals.webhook.errors} | ${totals.baseline.errors} | |`);

  if (profileSeconds > 0) {
    await webhook.stop();
    const profileDir = await mkdtemp(join(tmpdir(), 'reuse-profile-'));
    webhook = await env.startWebhook(['--cpu-prof', '--cpu-prof-dir', profileDir]);
    await env.load(webhook.port, body, { duration: warmUpSeconds });
    const profiled = await env.load(webhook.port, body, { duration: profileSeconds });
    log(`profiled: ${profiled.requests.total} syncs in ${profileSeconds} s (with the profiler's overhead)`);
    // A graceful stop: the profile is written as the process exits.
    await webhook.stop();
    const file = (await readdir(profileDir)).find((name) => name.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile in ${profileDir}; see ${webhook.logPath}`);
    console.log(`\nprofile: ${join(profileDir, file)}\n`);
    console.log(summarise(steadyState(JSON.parse(await readFile(join(profileDir, file), 'utf8')) as CpuProfile, warmUpSeconds * 1_000)));
  } else {
    await webhook.stop();
  }
  await baseline.process.stop();
  await stopAllControlPlanes();
}

const existing = process.argv[2];
const run = existing
  ? readFile(existing, 'utf8').then((text) => console.log(summarise(steadyState(JSON.parse(text) as CpuProfile, warmUpSeconds * 1_000))))
  : measureAndProfile();
run.catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAllControlPlanes();
  process.exit(1);
});
