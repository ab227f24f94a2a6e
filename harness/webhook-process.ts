// The webhook as it runs in production: its own process, configured by environment as
// deploy/deployment.yaml configures it (HTTPS from the mounted serving Secret, the hook
// token from the mounted hook-token Secret), against a host cluster's kubeconfig.
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.js';
import { freePort } from './net.js';
import { startProcess, type ManagedProcess } from './processes.js';
import type { WebhookInstall } from './webhook-install.js';

const mainPath = fileURLToPath(new URL('../server/main.ts', import.meta.url));

export interface WebhookProcess extends ManagedProcess {
  port: number;
  /** METRICS_PORT: /metrics over plain HTTP. */
  metricsPort: number;
  metricsUrl: string;
}

export interface WebhookProcessOptions {
  /** The compiled dist/server/main.js instead of the TypeScript source (the benchmark). */
  entry?: string;
  /** Node flags before the entry, e.g. --cpu-prof (the benchmark's profiles). */
  nodeFlags?: string[];
}

export async function startWebhookProcess(install: WebhookInstall, hostKubeconfig: string, logPath: string, env: NodeJS.ProcessEnv = {},
  options: WebhookProcessOptions = {}): Promise<WebhookProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = [...(options.nodeFlags ?? []), ...(options.entry ? [options.entry] : ['--import', 'tsx', mainPath])];
  const webhook = await startProcess(process.execPath, args, logPath, {
    ...process.env,
    KUBECONFIG: hostKubeconfig,
    PORT: String(port),
    // Not the default 9090: processes of several tests and benchmarks run side by side.
    METRICS_PORT: String(metricsPort),
    HOOK_BEARER_TOKEN_FILE: install.tokenFile,
    TLS_CERT_FILE: install.tlsVolume.path('tls.crt'),
    TLS_KEY_FILE: install.tlsVolume.path('tls.key'),
    ...env,
  });
  try {
    await eventually(async () => (await install.call(port, '/healthz')).status === 200, `the webhook answers /healthz (its log: ${logPath})`,
      { timeoutMs: 30_000, intervalMs: 100 });
  } catch (error) {
    await webhook.stop();
    throw error;
  }
  return { ...webhook, port, metricsPort, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}
