// The hooks of a wired webhook over its own context (clusters, clock, policy, metrics), without
// TLS, hook token, client certificate or Events: what the process serves only with
// ALLOW_INSECURE_HOOKS=true. The tests listen on it on loopback (the curl examples, the load test);
// the server builds no such app of its own.
import type { RequestListener } from 'node:http';
import { createApp } from '../server/app.js';
import type { WiredWebhook } from '../server/webhook.js';

export function insecureAppOf(webhook: WiredWebhook): RequestListener {
  return createApp(webhook.context, {
    maxBodyBytes: webhook.maxBodyBytes, metrics: webhook.metrics, hostClusterReachable: () => webhook.clusters.host.checkReachable(),
  });
}
