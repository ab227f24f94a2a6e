// Process start: configuration, wiring, listen, graceful shutdown.
import { insecureHooks, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { createWebhook } from './webhook.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const webhook = await createWebhook({ config, log });
const missing = insecureHooks(config);
if (missing.length) {
  // loadConfig let this through only because ALLOW_INSECURE_HOOKS=true.
  log.warn(`INSECURE: ALLOW_INSECURE_HOOKS=true and the hooks are served with ${missing.join(' and ')}: `
    + 'anyone who reaches this port can mint tokens or read them in transit. Never run this in a cluster.', { port: webhook.port });
}

async function shutdown(signal: string): Promise<void> {
  log.info('shutting down', { signal });
  await webhook.stop();
  log.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
