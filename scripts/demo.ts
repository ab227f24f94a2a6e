// npm run demo [-- --keep]
//
// The project's main job on a machine with no cluster: local host and target control
// planes, the CRDs and a DPUCluster, the webhook as its own process installed as the
// README says (HTTPS with the shipped certificate layout, the hook token), and
// Metacontroller's part played, from the shipped CompositeController, for the seed's
// request. Prints the Secret (token redacted) and proves it authenticates to the target
// cluster. With --keep, everything stays up for the curl examples of docs/operations.md until Ctrl-C.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startControlPlane, stopAllControlPlanes } from '../harness/control-plane.js';
import { installDpuClusterCrd, registerDpuCluster } from '../harness/dpucluster.js';
import { createObjects, readManifests } from '../harness/kube-helpers.js';
import { MetacontrollerDriver } from '../harness/metacontroller/driver.js';
import { logTail } from '../harness/processes.js';
import { authenticatesAs, decode, readSecret } from '../harness/secrets.js';
import { hookTokenSecretName, requestCrdPath, serviceNetwork } from '../harness/webhook-env.js';
import { WebhookInstall } from '../harness/webhook-install.js';
import { startWebhookProcess } from '../harness/webhook-process.js';

const keep = process.argv.includes('--keep');
const root = fileURLToPath(new URL('..', import.meta.url));
const seedPath = `${root}examples/dpuservice-credential-request.yaml`;
const say = (text: string) => console.log(`\n== ${text}`);

/** The kubeconfig with its token replaced, so the demo shows the shape and never the secret. */
function redactedKubeconfig(text: string): string {
  const config = parse(text) as { users: { user: { token: string } }[] };
  for (const user of config.users) user.user.token = `<redacted: ${user.user.token.length} characters>`;
  return stringify(config);
}

async function main(): Promise<void> {
  say('starting the host cluster and the DPU cluster (etcd + kube-apiserver on loopback)');
  const started = Date.now();
  const [host, target] = await Promise.all([startControlPlane({ name: 'host' }), startControlPlane({ name: 'dpu-cplane-tenant1' })]);
  console.log(`host ${host.server}, DPU cluster ${target.server} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

  say('installing the CRDs and registering the DPU cluster as DPUCluster default/dpu-cplane-tenant1');
  const hostConfig = host.adminKubeConfig();
  await createObjects(hostConfig, await readManifests(requestCrdPath));
  await installDpuClusterCrd(hostConfig);
  await registerDpuCluster(hostConfig, target, { name: 'dpu-cplane-tenant1' });

  say('installing the webhook\'s Secrets as deploy/cert-manager/certificate.yaml and the README describe them');
  const dir = await mkdtemp(join(tmpdir(), 'dpu-credential-demo-'));
  const install = await WebhookInstall.create(hostConfig, dir, { hookTokenSecretName: await hookTokenSecretName() });
  const { namespace, caSecretName, servingSecretName, dnsNames } = install.certificates;
  console.log(`CA ${namespace}/${caSecretName} (made with openssl here; cert-manager's selfSigned Issuer + CA Certificate in a cluster)`);
  console.log(`serving certificate ${namespace}/${servingSecretName} signed by that CA, for ${dnsNames.join(', ')}`);
  console.log(`hook token ${namespace}/${install.hookTokenSecretName} (32 random bytes)`);

  say('starting the webhook over HTTPS with the hook token (npm start runs the same server, compiled)');
  const hostKubeconfig = await host.writeAdminKubeconfig();
  const logPath = join(dir, 'webhook.log');
  const webhook = await startWebhookProcess(install, hostKubeconfig, logPath, { LOG_LEVEL: 'info' });
  console.log(`webhook listening on https://127.0.0.1:${webhook.port}; Metacontroller reaches it as https://${install.serviceHost}:443`);

  say(`applying ${seedPath.slice(root.length)} (the seed's example, unchanged)`);
  await createObjects(hostConfig, await readManifests(seedPath));

  say('playing Metacontroller from metacontroller/compositecontroller.yaml: sync, apply the Secret, write the status');
  const driver = await MetacontrollerDriver.start({ host: hostConfig, network: await serviceNetwork(webhook.port) });
  const { response } = await driver.reconcile('default', 'dpu-01-credential-request');
  const request = await driver.readParent('default', 'dpu-01-credential-request');
  for (const condition of request?.status?.conditions ?? []) {
    console.log(`${condition.type}=${condition.status} (${condition.reason}) ${condition.message}`);
  }
  console.log(`token issued ${request?.status?.issuedAt}, expires ${request?.status?.expirationTimestamp}; ` +
    `next sync in ${response.resyncAfterSeconds} s (80% of the lifetime, less a fixed jitter)`);

  say('Secret default/dpu-01-credential (token redacted)');
  const secret = await readSecret(hostConfig, 'dpu-01-credential');
  if (!secret) throw new Error('the Secret was not created');
  console.log(`labels: ${JSON.stringify(secret.metadata?.labels)}`);
  console.log(redactedKubeconfig(decode(secret, 'kubeconfig')).trimEnd());

  say('using the Secret\'s kubeconfig against the DPU cluster (SelfSubjectReview)');
  console.log(`authenticated as ${await authenticatesAs(secret)}`);

  say('webhook log (one line per hook call; no token or kubeconfig in it)');
  console.log(await logTail(logPath, 10));

  if (keep) {
    const targetKubeconfig = await target.writeAdminKubeconfig();
    const caPath = join(dir, 'webhook-ca.crt');
    const authHeaderPath = join(dir, 'hook-auth.header');
    await writeFile(caPath, install.pki.caCertPem);
    // In a file curl reads (-H @file), so the hook token is not printed.
    await writeFile(authHeaderPath, `Authorization: Bearer ${install.hookToken}\n`, { mode: 0o600 });
    say('everything keeps running; in another shell:');
    console.log(`export WEBHOOK=https://${install.serviceHost}:${webhook.port}`);
    console.log(`export CURL_OPTS="--cacert ${caPath} --resolve ${install.serviceHost}:${webhook.port}:127.0.0.1 -H @${authHeaderPath}"`);
    console.log(`export KUBECONFIG=${hostKubeconfig}        # the host cluster (admin)`);
    console.log(`export TARGET_KUBECONFIG=${targetKubeconfig}   # the DPU cluster (admin)`);
    console.log(`export PATH=${host.kubectlPath.replace(/\/kubectl$/, '')}:$PATH   # kubectl`);
    console.log('then try the curl calls in docs/operations.md. Ctrl-C stops everything.');
    await new Promise<void>((resolve) => process.once('SIGINT', resolve));
  }
  say('stopping');
  driver.close();
  await webhook.stop();
  await stopAllControlPlanes();
  console.log('done');
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  await stopAllControlPlanes();
  process.exit(1);
});
