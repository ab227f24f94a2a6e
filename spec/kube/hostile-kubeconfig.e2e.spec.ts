// A DPUCluster's admin kubeconfig is whatever its Secret holds, and whoever may write that
// Secret chooses it (issue 24 point 2). Its checks used regular expressions that backtrack
// quadratically: 700,000 spaces and one stray character in certificate-authority-data
// blocked the webhook's event loop for minutes, at every sync of every request on that
// DPUCluster, and every other request's sync waited behind it (the webhook runs in this
// process: before the fix this suite did not finish). Now the sync answers a clear error at
// once, and another request's sync beside it is not held up. (The cap on the Secret's size,
// 1 MiB, is what the API server lets a Secret's data hold, so no Secret here can pass it: it is
// tested in spec/kube/kubeconfig.spec.ts.)
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
      name: 'spaces', kubeconfigYaml: edited((cluster) => { cluster['certificate-authority-data'] = `${' '.repeat(700_000)}!`; }),
    });
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it('answers a sync on 700,000 spaces in certificate-authority-data with a clear error, while another request\'s sync beside it completes', async function () {
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
});
