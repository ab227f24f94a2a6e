// A DPUCluster's admin kubeconfig is whatever its Secret holds, and whoever may write that
// Secret chooses it (issue 24 point 2). Its checks used regular expressions that backtrack
// quadratically: 700,000 spaces and one stray character in certificate-authority-data
// blocked the webhook's event loop for minutes, at every sync of every request on that
// DPUCluster, and every other request's sync waited behind it (the webhook runs in this
// process: before the fix this suite did not finish). Now the sync answers a clear error at
// once, and another request's sync beside it is not held up. The YAML parser itself was
// superlinear too (issue 24 review): a map of 60,000 keys (589 kB) blocked it for 85 s, 65,000
// '[' for seconds and then overflowed the stack. Now a Secret over 64 KiB is not read, and what
// is under it is checked in one pass for the shape of a kubeconfig before it is parsed.
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { registerDpuCluster } from '../../harness/dpucluster.js';
import { condition } from '../../harness/kube-helpers.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

describe('a hostile DPUCluster kubeconfig (real API servers)', function () {
  let env: WebhookEnv;
  const spec = (name: string, cluster: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: cluster }, type: 'kubeconfig', secret: { name },
  });
  /** The target's admin kubeconfig with the cluster entry changed by `edit`. */
  const edited = (edit: (cluster: Record<string, unknown>) => void) => {
    const document = parse(env.target.adminKubeconfigYaml()) as { clusters: { cluster: Record<string, unknown> }[] };
    edit(document.clusters[0]!.cluster);
    return stringify(document);
  };
  /** Runs `work` and prints how long it took. */
  const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const startedAt = performance.now();
    const result = await work();
    console.log(`      ${what}: ${(performance.now() - startedAt).toFixed(0)} ms`);
    return result;
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    await registerDpuCluster(env.hostConfig(), env.target, {
      name: 'spaces', kubeconfigYaml: edited((cluster) => { cluster['certificate-authority-data'] = `${' '.repeat(60_000)}!`; }),
    });
    await registerDpuCluster(env.hostConfig(), env.target, {
      name: 'many-keys', kubeconfigYaml: Array.from({ length: 60_000 }, (_, index) => `k${index}: v`).join('\n'),
    });
    await registerDpuCluster(env.hostConfig(), env.target, { name: 'brackets', kubeconfigYaml: '['.repeat(60_000) });
    await registerDpuCluster(env.hostConfig(), env.target, { name: 'closing', kubeconfigYaml: ']'.repeat(60_000) });
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it('answers a sync on 60,000 spaces in certificate-authority-data (700,000 before the 64 KiB cap) with a clear error, while another request\'s sync beside it completes', async function () {
    await env.createRequest('on-spaces', spec('on-spaces', 'spaces'));
    await env.createRequest('beside', spec('beside', 'dpu-cplane-tenant1'));
    await Promise.all([
      timed('sync of the request on the hostile kubeconfig', () => env.driver.reconcile('default', 'on-spaces')),
      timed('sync of another request at the same time', () => env.driver.reconcile('default', 'beside')),
    ]);
    const refused = condition(await env.driver.readParent('default', 'on-spaces'), 'Ready');
    expect(refused).to.include({ status: 'False', reason: 'InvalidTargetKubeconfig' });
    expect(refused?.message).to.contain('the super-admin.conf of Secret default/spaces-admin-kubeconfig').and.to.contain('certificate-authority-data is not base64');
    expect(condition(await env.driver.readParent('default', 'beside'), 'Ready')).to.include({ status: 'True' });
  });

  it('answers syncs on a map of 60,000 keys, on 60,000 \'[\' and on 60,000 \']\' with a clear error, while another request\'s sync beside them completes', async function () {
    await env.createRequest('on-many-keys', spec('on-many-keys', 'many-keys'));
    await env.createRequest('on-brackets', spec('on-brackets', 'brackets'));
    await env.createRequest('on-closing', spec('on-closing', 'closing'));
    await env.createRequest('beside-yaml', spec('beside-yaml', 'dpu-cplane-tenant1'));
    await Promise.all([
      timed('sync of the request on 60,000 keys', () => env.driver.reconcile('default', 'on-many-keys')),
      timed('sync of the request on 60,000 \'[\'', () => env.driver.reconcile('default', 'on-brackets')),
      timed('sync of the request on 60,000 \']\'', () => env.driver.reconcile('default', 'on-closing')),
      timed('sync of another request at the same time', () => env.driver.reconcile('default', 'beside-yaml')),
    ]);
    const tooLarge = condition(await env.driver.readParent('default', 'on-many-keys'), 'Ready');
    expect(tooLarge).to.include({ status: 'False', reason: 'InvalidTargetKubeconfig' });
    expect(tooLarge?.message).to.contain('the super-admin.conf of the kubeconfig Secret default/many-keys-admin-kubeconfig').and.to.contain('more than a kubeconfig may be (65536)');
    const nested = condition(await env.driver.readParent('default', 'on-brackets'), 'Ready');
    expect(nested).to.include({ status: 'False', reason: 'InvalidTargetKubeconfig' });
    expect(nested?.message).to.contain('the super-admin.conf of Secret default/brackets-admin-kubeconfig').and.to.contain('60000 flow brackets');
    const closing = condition(await env.driver.readParent('default', 'on-closing'), 'Ready');
    expect(closing).to.include({ status: 'False', reason: 'InvalidTargetKubeconfig' });
    expect(closing?.message).to.contain('the super-admin.conf of Secret default/closing-admin-kubeconfig').and.to.contain('YAML tokens');
    expect(condition(await env.driver.readParent('default', 'beside-yaml'), 'Ready')).to.include({ status: 'True' });
  });
});
