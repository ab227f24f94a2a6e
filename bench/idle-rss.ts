// The webhook's idle memory: VmRSS after start-up (no hook call yet) for each set of node
// flags asked for, then a heap snapshot of the first, summarised by node type, by
// constructor, and by the package whose code and source it is.
//   npx tsx bench/idle-rss.ts                 measure and snapshot
//   npx tsx bench/idle-rss.ts <file.heapsnapshot>  summarise an existing snapshot
// IDLE_FLAG_SETS: flag sets separated by '|' ('' is the default; e.g. "|--max-semi-space-size=1");
// IDLE_RUNS (3) starts per flag set, the median reported; IDLE_AT_MS ("3000"): when VmRSS is read,
// in ms after /healthz answered, comma-separated (V8 gives memory back some time after start-up);
// IDLE_ENTRIES: other builds' main.js to measure besides this one, comma-separated (side by side).
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopAllControlPlanes } from '../harness/control-plane.js';
import { buildWebhook, median, rssMb, startBenchEnvironment } from './setup.js';

const flagSets = (process.env.IDLE_FLAG_SETS ?? '').split('|').map((set) => set.split(' ').filter(Boolean));
const runs = Number(process.env.IDLE_RUNS ?? 3);
const atMs = (process.env.IDLE_AT_MS ?? '3000').split(',').map(Number);
/** undefined: this build. */
const entries = [undefined, ...(process.env.IDLE_ENTRIES ?? '').split(',').filter(Boolean)];

/**
 * Loaded into the webhook before its own code: on SIGUSR2 it writes V8's heap statistics and a
 * heap snapshot into IDLE_DIR. The webhook itself is not changed for the measurement.
 */
const snapshotOnSignal = `
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
process.on('SIGUSR2', () => {
  const dir = process.env.IDLE_DIR;
  const stats = { memory: process.memoryUsage(), heap: getHeapStatistics(), spaces: getHeapSpaceStatistics() };
  writeFileSync(dir + '/stats.json', JSON.stringify(stats));
  writeHeapSnapshot(dir + '/idle.heapsnapshot');
  writeFileSync(dir + '/done', '');
});`;

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface HeapStats {
  memory: NodeJS.MemoryUsage;
  spaces: { space_name: string; space_used_size: number; physical_space_size: number }[];
}

function packageOf(url: string): string {
  if (!url) return '(no script)';
  if (url.startsWith('node:') || !/[/\\]/.test(url)) return 'node internals';
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (dependency) return dependency[1]!;
  if (/\/dist\/server\//.test(url)) return 'ours: server/';
  return url;
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

function summarise(heap: HeapSnapshot, top = 25): string {
  const { node_fields: nodeFields, node_types: nodeTypes, edge_fields: edgeFields, edge_types: edgeTypes } = heap.snapshot.meta;
  const nodeWidth = nodeFields.length;
  const edgeWidth = edgeFields.length;
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((field) => nodeFields.indexOf(field)) as [number, number, number, number];
  const [edgeTypeAt, edgeNameAt, edgeToAt] = ['type', 'name_or_index', 'to_node'].map((field) => edgeFields.indexOf(field)) as [number, number, number];
  const typeNames = nodeTypes[0];
  const edgeTypeNames = edgeTypes[0];
  const nodeCount = heap.nodes.length / nodeWidth;
  const firstEdge = new Uint32Array(nodeCount + 1);
  for (let node = 0; node < nodeCount; node++) firstEdge[node + 1] = firstEdge[node]! + heap.nodes[node * nodeWidth + edgeCountAt]!;
  const type = (node: number) => typeNames[heap.nodes[node * nodeWidth + typeAt]!]!;
  const name = (node: number) => heap.strings[heap.nodes[node * nodeWidth + nameAt]!]!;
  const size = (node: number) => heap.nodes[node * nodeWidth + sizeAt]!;
  /** The node an edge of this name leads to, if any. */
  const edge = (node: number, edgeName: string): number | undefined => {
    for (let at = firstEdge[node]!; at < firstEdge[node + 1]!; at++) {
      const base = at * edgeWidth;
      const kind = edgeTypeNames[heap.edges[base + edgeTypeAt]!];
      if (kind === 'element' || kind === 'hidden') continue;
      if (heap.strings[heap.edges[base + edgeNameAt]!] === edgeName) return heap.edges[base + edgeToAt]! / nodeWidth;
    }
    return undefined;
  };

  let total = 0;
  const byType = new Map<string, { bytes: number; count: number }>();
  const byName = new Map<string, { bytes: number; count: number }>();
  const add = (map: Map<string, { bytes: number; count: number }>, key: string, bytes: number) => {
    const entry = map.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += bytes;
    entry.count++;
    map.set(key, entry);
  };
  // Code and source by package: a Script's source text; a function's SharedFunctionInfo and
  // its bytecode, found through its script edge; and the closures of those functions.
  const scriptPackage = new Map<number, string>();
  const byPackage = new Map<string, { source: number; functions: number; closures: number }>();
  const packageEntry = (pkg: string) => {
    let entry = byPackage.get(pkg);
    if (!entry) byPackage.set(pkg, entry = { source: 0, functions: 0, closures: 0 });
    return entry;
  };
  const packageOfScript = (script: number) => {
    let pkg = scriptPackage.get(script);
    if (pkg === undefined) {
      // A Script's node is named after its URL.
      pkg = packageOf(name(script));
      scriptPackage.set(script, pkg);
      const source = edge(script, 'source');
      if (source !== undefined) packageEntry(pkg).source += size(source);
    }
    return pkg;
  };
  const scriptOf = (shared: number) => edge(shared, 'script_or_debug_info') ?? edge(shared, 'script');
  const functionPackage = (shared: number): string | undefined => {
    const script = scriptOf(shared);
    return script === undefined ? undefined : packageOfScript(script);
  };
  for (let node = 0; node < nodeCount; node++) {
    const bytes = size(node);
    total += bytes;
    add(byType, type(node), bytes);
    const kind = type(node);
    add(byName, kind === 'object' || kind === 'native' ? name(node) : `(${kind})${kind === 'code' || kind === 'hidden' ? ` ${name(node).replace(/ \/ .*/, '')}` : ''}`, bytes);
    if (kind === 'code' && scriptOf(node) !== undefined) {
      const pkg = functionPackage(node)!;
      // Its bytecode (or what stands for it until compiled); scope infos are shared, not counted.
      const data = edge(node, 'function_data');
      packageEntry(pkg).functions += bytes + (data === undefined ? 0 : size(data));
    } else if (kind === 'closure') {
      const shared = edge(node, 'shared');
      const pkg = shared === undefined ? undefined : functionPackage(shared);
      if (pkg) packageEntry(pkg).closures += bytes;
    }
  }
  const lines = [`heap snapshot: ${mb(total)} MB in ${nodeCount} objects`, '', '| MB | objects | node type |', '|---|---|---|'];
  for (const [key, { bytes, count }] of [...byType].sort((a, b) => b[1].bytes - a[1].bytes)) lines.push(`| ${mb(bytes)} | ${count} | ${key} |`);
  lines.push('', '| MB | objects | constructor (objects) or kind |', '|---|---|---|');
  for (const [key, { bytes, count }] of [...byName].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
    lines.push(`| ${mb(bytes)} | ${count} | ${key.slice(0, 80).replaceAll('|', '\\|')} |`);
  }
  lines.push('', '| MB source | MB functions (shared info, bytecode) | MB closures | package |', '|---|---|---|---|');
  for (const [pkg, entry] of [...byPackage].sort((a, b) => (b[1].source + b[1].functions + b[1].closures) - (a[1].source + a[1].functions + a[1].closures))
    .filter(([, entry]) => entry.source + entry.functions + entry.closures > 50_000)) {
    lines.push(`| ${mb(entry.source)} | ${mb(entry.functions)} | ${mb(entry.closures)} | ${pkg} |`);
  }
  return lines.join('\n');
}

async function waitFor(path: string, timeoutMs: number): Promise<void> {
  for (const started = Date.now(); Date.now() - started < timeoutMs;) {
    if (await stat(path).then(() => true, () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${path} did not appear within ${timeoutMs} ms`);
}

async function measure(): Promise<void> {
  await buildWebhook();
  const env = await startBenchEnvironment();
  const snapshotDir = await mkdtemp(join(tmpdir(), 'idle-heap-'));
  process.env.IDLE_DIR = snapshotDir;
  const preload = `--import=data:text/javascript,${encodeURIComponent(snapshotOnSignal)}`;
  console.log(`| node flags | ${atMs.map((ms) => `VmRSS MB ${ms / 1000} s after start (median; runs)`).join(' | ')} |`);
  console.log(`|---|${atMs.map(() => '---|').join('')}`);
  for (const entry of entries) for (const flags of flagSets) {
    const rss = atMs.map((): number[] => []);
    for (let run = 0; run < runs; run++) {
      const webhook = await env.startWebhook([...flags, preload], entry);
      const started = Date.now();
      for (const [index, ms] of atMs.entries()) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + ms - Date.now())));
        rss[index]!.push(await rssMb(webhook.pid, 'VmRSS'));
      }
      if (entry === undefined && flags === flagSets[0] && run === runs - 1) {
        process.kill(webhook.pid, 'SIGUSR2');
        await waitFor(join(snapshotDir, 'done'), 60_000);
      }
      await webhook.stop();
    }
    const cells = rss.map((values) => `${median(values).toFixed(1)} (${values.map((value) => value.toFixed(1)).join(', ')})`);
    console.log(`| ${entry ? `${entry} ` : ''}${flags.join(' ') || '(none)'} | ${cells.join(' | ')} |`);
  }
  await stopAllControlPlanes();

  const stats = JSON.parse(await readFile(join(snapshotDir, 'stats.json'), 'utf8')) as HeapStats;
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = stats.memory;
  console.log(`\nsnapshot of the first flag set: ${join(snapshotDir, 'idle.heapsnapshot')}`);
  console.log(`process.memoryUsage: rss ${mb(rss)}, heapTotal ${mb(heapTotal)}, heapUsed ${mb(heapUsed)}, external ${mb(external)}, arrayBuffers ${mb(arrayBuffers)} MB\n`);
  console.log('| V8 space | MB used | MB physical |');
  console.log('|---|---|---|');
  for (const space of stats.spaces) console.log(`| ${space.space_name} | ${mb(space.space_used_size)} | ${mb(space.physical_space_size)} |`);
  console.log('');
  console.log(summarise(JSON.parse(await readFile(join(snapshotDir, 'idle.heapsnapshot'), 'utf8')) as HeapSnapshot));
}

const existing = process.argv[2];
const run = existing
  ? readFile(existing, 'utf8').then((text) => console.log(summarise(JSON.parse(text) as HeapSnapshot)))
  : measure();
run.catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await stopAllControlPlanes();
  process.exit(1);
});
