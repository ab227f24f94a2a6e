// Where the reuse path's CPU goes: the webhook against the baseline side by side (short
// alternating rounds, ratio of the sums), then the webhook alone under --cpu-prof, its
// profile summarised by function and by package.
//   npx tsx bench/profile-reuse.ts                 measure and profile
//   npx tsx bench/profile-reuse.ts <file.cpuprofile>  summarise an existing profile
// PROFILE_ROUNDS (3), PROFILE_ROUND_SECONDS (3), PROFILE_SECONDS (5); PROFILE_SECONDS=0 skips the profile.
// PROFILE_BEFORE_ENTRY=<other build>/dist/server/main.js adds that build to the rounds
// (PROFILE_BEFORE_FLAGS: node flags for it; PROFILE_BEFORE_RELATED=1 sends it the body with the
// request's DPUCluster among the related objects, as the CompositeController of 0.3.0 and earlier
// asked Metacontroller for: without it those builds read the DPUCluster from the API server at every sync);
// PROFILE_VARIANT_FLAGS="<node flags>" adds the webhook started with those flags;
// PROFILE_NODE_BASELINE=1 adds the baseline on node:http alone, without express (baseline-server.ts);
// PROFILE_BASELINE=1 profiles the baseline server too; PROFILE_LOG_DIR keeps the servers' logs.
import { copyFile, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { buildWebhook, connections, cpuMs, log, root, startBaseline, startBenchEnvironment, webhookWithReuseBody, withRelatedDpuCluster } from './setup.js';

const rounds = Number(process.env.PROFILE_ROUNDS ?? 3);
const roundSeconds = Number(process.env.PROFILE_ROUND_SECONDS ?? 3);
const profileSeconds = Number(process.env.PROFILE_SECONDS ?? 5);
const warmUpSeconds = 1;
/** Another build's dist/server/main.js, measured in the same rounds (e.g. the commit before a change). */
const beforeEntry = process.env.PROFILE_BEFORE_ENTRY;
const beforeFlags = (process.env.PROFILE_BEFORE_FLAGS ?? '').split(' ').filter(Boolean);
const beforeRelated = process.env.PROFILE_BEFORE_RELATED === '1';
/** Where to copy each server's log after the rounds (e.g. for --trace-gc lines). */
const logDir = process.env.PROFILE_LOG_DIR;
const profileBaseline = process.env.PROFILE_BASELINE === '1';
/** Node flags for one more webhook in the rounds (e.g. --max-semi-space-size=1). */
const variantFlags = (process.env.PROFILE_VARIANT_FLAGS ?? '').split(' ').filter(Boolean);
const nodeBaseline = process.env.PROFILE_NODE_BASELINE === '1';

/** The parts of a V8 .cpuprofile this summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Only the samples from `skipMs` after the first one in the hook (a frame of `hookUrl`) on:
 * start-up (module loading, the first lists) and the warm-up load are not the steady state.
 */
function steadyState(profile: CpuProfile, skipMs: number, hookUrl: string): CpuProfile {
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const inSync = (id: number | undefined): boolean => {
    for (let at = id; at !== undefined; at = parent.get(at)) {
      if (byId.get(at)?.callFrame.url.endsWith(hookUrl)) return true;
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
  // Node internals and V8 builtins charged to the nearest script frame above them: what
  // each package (and each of our files) costs with the runtime work it asks for.
  const charged = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const own = byId.get(id)!.callFrame;
    if (own.functionName === '(idle)') continue;
    let pkg: string | undefined;
    for (let at: number | undefined = id; at !== undefined && pkg === undefined; at = parent.get(at)) {
      const { url, functionName } = byId.get(at)!.callFrame;
      if (url && !url.startsWith('node:')) pkg = packageOf(url, functionName);
    }
    pkg ??= packageOf(own.url, own.functionName) === 'node internals' ? 'node internals (no script caller: sockets, timers, TLS)' : packageOf(own.url, own.functionName);
    charged.set(pkg, (charged.get(pkg) ?? 0) + us);
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
  const chargedOursUs = [...charged].filter(([pkg]) => pkg.startsWith('ours: ')).reduce((sum, [, us]) => sum + us, 0);
  lines.push('', '| ms | share | package, with the node internals and builtins it calls |', '|---|---|---|');
  for (const [pkg, us] of [...charged, ['ours: all of server/', chargedOursUs] as const].sort((a, b) => b[1] - a[1]).filter(([, us]) => us >= totalUs / 200)) {
    lines.push(`| ${ms(us)} | ${percent(us)} | ${pkg} |`);
  }
  return lines.join('\n');
}

interface Server {
  name: string;
  /** The reuse-path body this server is sent. */
  body: string;
  port: number;
  pid: number;
  logPath: string;
  stop(): Promise<void>;
}

interface Totals {
  requests: number;
  seconds: number;
  cpuMs: number;
  errors: number;
}

const webhookHookUrl = '/dist/server/hooks/sync.js';
const baselineHookUrl = '/bench/baseline-server.ts';

async function profileOf(dir: string, logPath: string, hookUrl: string): Promise<CpuProfile> {
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile in ${dir}; see ${logPath}`);
  console.log(`\nprofile: ${join(dir, file)}\n`);
  return steadyState(JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile, warmUpSeconds * 1_000, hookUrl);
}

async function measureAndProfile(): Promise<void> {
  await buildWebhook();
  const env = await startBenchEnvironment();
  const { webhook, body } = await webhookWithReuseBody(env);
  const responseBytes = (await env.install.call(webhook.port, '/sync', { method: 'POST', body })).body.length;
  const baseline = await startBaseline(env, responseBytes);
  const servers: Server[] = [
    { name: 'baseline', body, port: baseline.port, pid: baseline.process.pid, logPath: baseline.process.logPath, stop: () => baseline.process.stop() },
    { name: 'webhook', body, ...webhook },
  ];
  if (beforeEntry) {
    const beforeBody = beforeRelated ? await withRelatedDpuCluster(env, body) : body;
    servers.push({ name: 'webhook before', body: beforeBody, ...await env.startWebhook(beforeFlags, beforeEntry) });
  }
  if (nodeBaseline) {
    const plain = await startBaseline(env, responseBytes, [], 'none');
    servers.push({ name: 'baseline node:http', body, port: plain.port, pid: plain.process.pid, logPath: plain.process.logPath, stop: () => plain.process.stop() });
  }
  if (variantFlags.length) servers.push({ name: `webhook ${variantFlags.join(' ')}`, body, ...await env.startWebhook(variantFlags) });
  log(`reuse path: request ${body.length} B, response ${responseBytes} B, ${connections} connections, ${rounds} rounds of ${roundSeconds} s each`);

  // Warm each up (JIT, TLS sessions), then take turns so all see the same background load.
  for (const server of servers) await env.load(server.port, server.body, { duration: 1 });
  const totals = new Map<Server, Totals>(servers.map((server) => [server, { requests: 0, seconds: 0, cpuMs: 0, errors: 0 }]));
  for (let round = 0; round < rounds; round++) {
    const perRound: string[] = [];
    // Every other round in reverse order, so that no server always follows the same one.
    for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
      const cpuBefore = await cpuMs(server.pid);
      const result = await env.load(server.port, server.body, { duration: roundSeconds });
      const total = totals.get(server)!;
      const roundCpuMs = (await cpuMs(server.pid)) - cpuBefore;
      total.cpuMs += roundCpuMs;
      total.requests += result.requests.total;
      total.seconds += result.duration;
      total.errors += result.errors + result.non2xx + result.timeouts;
      perRound.push(`${server.name} ${Math.round(result.requests.total / result.duration)}/s ${(roundCpuMs / result.requests.total).toFixed(3)} ms`);
    }
    log(`round ${round + 1}: ${perRound.join(', ')}`);
  }
  const base = totals.get(servers[0]!)!;
  const rate = (total: Totals) => total.requests / total.seconds;
  const cpuPerRequest = (total: Totals) => total.cpuMs / total.requests;
  console.log('| server | syncs/s | ratio to baseline | CPU ms per sync | baseline CPU / this CPU | errors |');
  console.log('|---|---|---|---|---|---|');
  for (const [server, total] of totals) {
    console.log(`| ${server.name} | ${rate(total).toFixed(0)} | ${(rate(total) / rate(base)).toFixed(2)} | ${cpuPerRequest(total).toFixed(3)} | `
      + `${(cpuPerRequest(base) / cpuPerRequest(total)).toFixed(2)} | ${total.errors} |`);
  }
  if (logDir) {
    // The control planes' directories, where the logs are, go when they stop.
    await mkdir(logDir, { recursive: true });
    for (const server of servers) await copyFile(server.logPath, join(logDir, `${server.name.replace(/[^\w.=-]+/g, '_')}.log`));
    log(`logs copied to ${logDir}`);
  }
  await Promise.all(servers.slice(1).map((server) => server.stop()));

  if (profileSeconds > 0) {
    const profileDir = await mkdtemp(join(tmpdir(), 'reuse-profile-'));
    const profiled = await env.startWebhook(['--cpu-prof', '--cpu-prof-dir', profileDir]);
    await env.load(profiled.port, body, { duration: warmUpSeconds });
    const result = await env.load(profiled.port, body, { duration: profileSeconds });
    log(`profiled: ${result.requests.total} syncs in ${profileSeconds} s (with the profiler's overhead)`);
    // A graceful stop: the profile is written as the process exits.
    await profiled.stop();
    console.log(summarise(await profileOf(profileDir, profiled.logPath, webhookHookUrl)));
  }
  await baseline.process.stop();
  if (profileSeconds > 0 && profileBaseline) {
    const profileDir = await mkdtemp(join(tmpdir(), 'baseline-profile-'));
    // The baseline server handles no signal, and a process a signal kills writes no profile.
    const exitOnSigint = `--import=data:text/javascript,process.once('SIGINT',()=>process.exit(0))`;
    const profiled = await startBaseline(env, responseBytes, ['--cpu-prof', '--cpu-prof-dir', profileDir, exitOnSigint]);
    await env.load(profiled.port, body, { duration: warmUpSeconds });
    const result = await env.load(profiled.port, body, { duration: profileSeconds });
    log(`baseline profiled: ${result.requests.total} requests in ${profileSeconds} s`);
    process.kill(profiled.process.pid, 'SIGINT');
    await profiled.process.exited;
    console.log(summarise(await profileOf(profileDir, profiled.process.logPath, baselineHookUrl)));
  }
  await stopAllControlPlanes();
}

const existing = process.argv[2];
const run = existing
  ? readFile(existing, 'utf8').then((text) =>
    console.log(summarise(steadyState(JSON.parse(text) as CpuProfile, warmUpSeconds * 1_000, process.env.PROFILE_HOOK_URL ?? webhookHookUrl))))
  : measureAndProfile();
run.catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAllControlPlanes();
  process.exit(1);
});
