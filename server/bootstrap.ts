// The bootstrap Job's process (chart templates/bootstrap/job.yaml): makes the hook token, the
// CA and the serving certificate when they are missing, renews the serving certificate from the
// same CA, and exits: 0 when all is in place, 1 otherwise (the Job retries). Run from the
// webhook's image: node --enable-source-maps dist/server/bootstrap.js
import { BootstrapRefused, runBootstrap } from './bootstrap/run.js';
import { BootstrapSettingsError, bootstrapSettingsFrom } from './bootstrap/settings.js';
import { loadHostConnection } from './kube/connection.js';
import { KubeRestClient } from './kube/rest.js';
import { createLogger } from './log.js';

/** Each call to the API server; the Job's activeDeadlineSeconds bounds the whole run. */
const callTimeoutMs = 10_000;
/** The Secrets it makes say who made them (never the data). */
const secretLabels = { 'app.kubernetes.io/part-of': 'dpu-credential-webhook', 'app.kubernetes.io/managed-by': 'dpu-credential-webhook-bootstrap' };

async function main(): Promise<number> {
  let settings;
  try {
    settings = bootstrapSettingsFrom(process.env);
  } catch (error) {
    if (error instanceof BootstrapSettingsError) {
      createLogger('info').error(error.message);
      return 1;
    }
    throw error;
  }
  const log = createLogger(settings.logLevel);
  // KUBECONFIG, else ~/.kube/config, else the Pod's ServiceAccount (the Job's).
  const client = new KubeRestClient(loadHostConnection().connection, { timeoutMs: callTimeoutMs });
  try {
    const report = await runBootstrap(client, settings, secretLabels, { log });
    log.info(report.done.length ? 'bootstrap done' : 'bootstrap: everything was in place', { namespace: settings.namespace, changes: report.done.length });
    return 0;
  } catch (error) {
    log.error(error instanceof BootstrapRefused ? error.message : `bootstrap failed: ${(error as Error).message}`, { namespace: settings.namespace });
    return 1;
  } finally {
    client.close();
  }
}

process.exitCode = await main();
