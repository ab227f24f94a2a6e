// What the benchmark scripts share: the compiled webhook, a host and a target control plane
// with one DPUCluster, the webhook installed as Metacontroller calls it (HTTPS, hook token),
// the baseline server, and the reuse-path request body Metacontroller sends.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import autocannon, { type Result } from 'autocannon';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startControlPlane, type ControlPlane } from '../harness/control-plane.js';
import { dpuClusterApi, installDpuClusterCrd, registerDpuCluster } from '../harness/dpucluster.js';
import { createObjects, readManifests } from '../harness/kube-helpers.js';
import { MetacontrollerDriver } from '../harness/metacontroller/driver.js';
import { freePort } from '../harness/net.js';
import { startProcess, type ManagedProcess } from '../harness/processes.js';
import { hookTokenSecretName, parentApi, requestCrdPath, serviceNetwork } from '../harness/webhook-env.js';
import { WebhookInstall } from '../harness/webhook-install.js';
import { startWebhookProcess, type WebhookProcess } from '../harness/webhook-process.js';
import { fleetIpSans } from './fleet-addresses.js';

export const root = fileURLToPath(new URL('..', import.meta.url));
export const connections = 32;
/** The DPUCluster every benchmark request targets. */
export const benchDpuClusterName = 'dpu-cplane-tenant1';

export const log = (text: string) => console.error(`bench: ${text}`);
export const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export async function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
  return kb / 1024;
}

/** CPU time (user + system) a process has used, in ms. */
export async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

export async function buildWebhook(): Promise<void> {
  log('building the webhook (npm run build)');
  await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: root });
}

export interface BenchEnvironment {
  host: ControlPlane;
  target: ControlPlane;
  hostConfig: KubeConfig;
  hostKubeconfig: string;
  install: WebhookInstall;
  /**
   * The compiled webhook as its own process; `nodeFlags` go before the entry (e.g. --cpu-prof),
   * `entry` is another build's main.js (an earlier commit's, compared side by side).
   */
  startWebhook(nodeFlags?: string[], entry?: string): Promise<WebhookProcess>;
  createRequest(name: string, serviceAccount: string): Promise<unknown>;
  /** Over HTTPS with the hook token, as Metacontroller calls: both servers present the webhook's certificate. */
  load(port: number, body: string, options: { duration: number } | { amount: number }): Promise<Result>;
}

export async function startBenchEnvironment(): Promise<BenchEnvironment> {
  log('starting host and target control planes');
  const [host, target] = await Promise.all([startControlPlane({ name: 'host' }), startControlPlane({ name: 'dpu-cplane-tenant1', extraIpSans: fleetIpSans() })]);
  const hostConfig = host.adminKubeConfig();
  await createObjects(hostConfig, await readManifests(requestCrdPath));
  await installDpuClusterCrd(hostConfig);
  await registerDpuCluster(hostConfig, target, { name: benchDpuClusterName });
  const hostKubeconfig = await host.writeAdminKubeconfig();
  const install = await WebhookInstall.create(hostConfig, await mkdtemp(join(tmpdir(), 'bench-')), { hookTokenSecretName: await hookTokenSecretName() });
  const objects = hostConfig.makeApiClient(CustomObjectsApi);
  return {
    host, target, hostConfig, hostKubeconfig, install,
    startWebhook: (nodeFlags = [], entry = join(root, 'dist/server/main.js')) =>
      startWebhookProcess(install, hostKubeconfig, `${hostKubeconfig}.webhook-${Date.now()}.log`, { LOG_LEVEL: 'info' }, { entry, nodeFlags }),
    createRequest: (name, serviceAccount) => objects.createNamespacedCustomObject({
      ...parentApi, namespace: 'default',
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
        spec: { serviceAccount: { name: serviceAccount }, duration: '1h', targetCluster: { name: benchDpuClusterName }, type: 'kubeconfig', secret: { name } },
      },
    }),
    load: (port, body, options) => autocannon({
      url: `https://127.0.0.1:${port}/sync`, method: 'POST', body, connections,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${install.hookToken}` },
      servername: install.serviceHost, tlsOptions: { ca: install.pki.caCertPem },
      ...options,
    }),
  };
}

/**
 * The sync Metacontroller sends when nothing changed: the request's second reconcile, after its Secret was written.
 * `name`: the request's (its ServiceAccount is `<name>-sa`), for scripts that need one request per webhook.
 */
export async function reuseRequestBody(env: BenchEnvironment, driver: MetacontrollerDriver, name = 'bench-reuse'): Promise<string> {
  await env.createRequest(name, `${name}-sa`);
  await driver.reconcile('default', name);
  await driver.reconcile('default', name);
  return driver.lastHookRequest;
}

/**
 * The body with the request's DPUCluster among the related objects, keyed as Metacontroller keys them:
 * what the CompositeController of 0.3.0 and earlier had Metacontroller send (those builds read it there).
 */
export async function withRelatedDpuCluster(env: BenchEnvironment, body: string): Promise<string> {
  const request = JSON.parse(body) as { related?: Record<string, Record<string, unknown>> };
  const namespace = 'default';
  const dpuCluster = await env.hostConfig.makeApiClient(CustomObjectsApi)
    .getNamespacedCustomObject({ ...dpuClusterApi, namespace, name: benchDpuClusterName });
  const key = `DPUCluster.${dpuClusterApi.group}/${dpuClusterApi.version}`;
  request.related = { ...request.related, [key]: { [`${namespace}/${benchDpuClusterName}`]: dpuCluster } };
  return JSON.stringify(request);
}

/** The compiled webhook started, and the reuse-path body got through a driver that is closed again. */
export async function webhookWithReuseBody(env: BenchEnvironment): Promise<{ webhook: WebhookProcess; body: string }> {
  const webhook = await env.startWebhook();
  const driver = await MetacontrollerDriver.start({ host: env.hostConfig, network: await serviceNetwork(webhook.port) });
  try {
    return { webhook, body: await reuseRequestBody(env, driver) };
  } finally {
    driver.close();
  }
}

/** The sum of a metric's series in Prometheus text (counters over all their labels). */
export const metricSum = (text: string, name: string) =>
  [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0);

/** bench/baseline-server.ts, answering `responseBytes` bytes, once it answers /healthz; `framework: 'none'`: on node:http alone. */
export async function startBaseline(env: BenchEnvironment, responseBytes: number, nodeFlags: string[] = [], framework: 'express' | 'none' = 'express'): Promise<{ process: ManagedProcess; port: number }> {
  const port = await freePort();
  const baseline = await startProcess(process.execPath, [...nodeFlags, '--import', 'tsx', join(root, 'bench/baseline-server.ts')], `${env.hostKubeconfig}.baseline-${framework}.log`, {
    ...process.env, PORT: String(port), RESPONSE_BYTES: String(responseBytes), BASELINE_FRAMEWORK: framework,
    TLS_CERT_FILE: env.install.tlsVolume.path('tls.crt'), TLS_KEY_FILE: env.install.tlsVolume.path('tls.key'),
  });
  for (let attempt = 0; !(await env.install.call(port, '/healthz').catch(() => undefined)); attempt++) {
    if (attempt > 300) throw new Error('the baseline server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { process: baseline, port };
}
