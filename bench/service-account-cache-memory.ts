// The ServiceAccount cache's heap per entry, measured in a process of its own so that nothing
// else allocates meanwhile: `node --expose-gc --import tsx bench/service-account-cache-memory.ts
// <kubeconfig>` lists and watches the cluster's managed ServiceAccounts with the real cache and
// prints one JSON line. Run alone (no argument) it starts a control plane and makes
// SA_CACHE_ENTRIES (10,000) managed ServiceAccounts first; bench/scale.ts runs it on its target.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { managedLabels } from '../server/credential/names.js';
import { KubeRestClient } from '../server/kube/rest.js';
import { ServiceAccountCache } from '../server/kube/service-account-cache.js';
import { connectionOf } from '../harness/connection.js';

export interface CacheMemory {
  entries: number;
  bytesPerEntry: number;
}

/** This script in a child process against `kubeconfigPath`. */
export async function measureInChild(kubeconfigPath: string): Promise<CacheMemory> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), kubeconfigPath]);
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as CacheMemory;
}

async function measure(kubeconfigPath: string): Promise<CacheMemory> {
  const config = new KubeConfig();
  config.loadFromFile(kubeconfigPath);
  const client = new KubeRestClient(connectionOf(config), { timeoutMs: 60_000 });
  const settle = () => {
    for (let round = 0; round < 3; round++) global.gc!();
    return process.memoryUsage().heapUsed;
  };
  const before = settle();
  const cache = new ServiceAccountCache(client);
  while (!cache.isSynced) await new Promise((resolve) => setTimeout(resolve, 50));
  // The list's response body is garbage by now; what stays is the cache.
  const after = settle();
  const entries = cache.size;
  cache.close();
  client.close();
  return { entries, bytesPerEntry: (after - before) / entries };
}

async function standalone(): Promise<void> {
  const { startControlPlane, stopAllControlPlanes } = await import('../harness/control-plane.js');
  const count = Number(process.env.SA_CACHE_ENTRIES ?? 10_000);
  const plane = await startControlPlane({ name: 'sa-cache' });
  try {
    const client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 60_000, maxSockets: 32 });
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < count) {
        const index = next++;
        await client.request('POST', '/api/v1/namespaces/default/serviceaccounts', {
          metadata: { name: `request-${index}-sa`, labels: managedLabels('default', `request-${index}`) },
        });
      }
    }));
    client.close();
    console.log(JSON.stringify(await measureInChild(await plane.writeAdminKubeconfig())));
  } finally {
    await stopAllControlPlanes();
  }
}

// Run as a script (not imported by bench/scale.ts).
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  if (process.argv[2]) console.log(JSON.stringify(await measure(process.argv[2])));
  else await standalone();
}
