// The webhook's app with a host cluster that is a closed port: every remote call fails at
// once, so tests of the HTTP layer and of hostile input need no control plane.
import { KubeConfig } from '@kubernetes/client-node';
import type { HookTokens } from '../server/http/bearer-auth.js';
import { silentLogger } from '../server/log.js';
import type { Metrics } from '../server/metrics.js';
import { wireWebhook, type WebhookConfig } from '../server/webhook.js';
import { connectionOf } from './connection.js';

/** A kubeconfig whose server is a closed port on loopback. */
export function closedHostKubeConfig(): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'closed', server: 'https://127.0.0.1:1', caData: Buffer.from('unused').toString('base64') }],
    users: [{ name: 'nobody', token: 'unused' }],
    contexts: [{ name: 'closed', cluster: 'closed', user: 'nobody' }],
    currentContext: 'closed',
  });
  return config;
}

/** What the unreachable-host webhook is configured with, apart from the options below. */
export const unreachableHostConfig: WebhookConfig = { port: 0, remoteTimeoutMs: 300, maxBodyBytes: 1024 * 1024, filePollIntervalMs: 20, shutdownTimeoutMs: 1_000 };

export async function unreachableHostApp(options: { maxBodyBytes: number; hookTokens?: HookTokens; clientCertificateSubject?: string; now?: () => Date; metrics?: Metrics }) {
  const wired = await wireWebhook({
    config: {
      ...unreachableHostConfig, maxBodyBytes: options.maxBodyBytes,
      ...(options.clientCertificateSubject !== undefined ? { tlsClientSubject: options.clientCertificateSubject } : {}),
    },
    hostConnection: connectionOf(closedHostKubeConfig()), log: silentLogger, recordEvents: false,
    ...(options.now ? { now: options.now } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.hookTokens ? { hookTokens: options.hookTokens } : {}),
  });
  return wired.app;
}
