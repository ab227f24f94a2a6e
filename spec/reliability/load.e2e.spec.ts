// Load: 50 concurrent hook callers for 60 s against the webhook with real API servers
// behind it. No errors, and the heap after the run is where it was before.
import autocannon from 'autocannon';
import { expect } from 'chai';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

const callers = 50;
const loadSeconds = Number(process.env.LOAD_TEST_SECONDS ?? 60);
const maxHeapGrowthMb = 16;

function heapUsedMbAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (.mocharc.json sets it)');
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

describe(`load: ${callers} concurrent callers for ${loadSeconds} s`, function () {
  let env: WebhookEnv;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it('answers every sync with 200, with a flat heap', async function () {
    this.timeout((loadSeconds + 60) * 1_000);
    // A mix: reuse-path syncs of several requests, and some that mint (no Secret yet).
    const bodies: string[] = [];
    for (let index = 0; index < 5; index++) {
      const name = `load-${index}`;
      await env.createRequest(name, {
        serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: 'dpu-cplane-tenant1' },
        type: index % 2 ? 'tokenFile' : 'kubeconfig', secret: { name },
      });
      await env.driver.reconcile('default', name);
      await env.driver.reconcile('default', name);
      bodies.push(env.driver.lastHookRequest);
    }
    const minting = JSON.parse(bodies[0]!) as { children: Record<string, unknown> };
    minting.children = { 'Secret.v1': {} };
    bodies.push(JSON.stringify(minting));

    const warmup = await autocannon({
      url: `${env.plainUrl}/sync`, method: 'POST', connections: callers, duration: 3,
      requests: bodies.map((body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body })),
    });
    expect(warmup.non2xx + warmup.errors).to.equal(0);
    const heapBefore = heapUsedMbAfterGc();
    const result = await autocannon({
      url: `${env.plainUrl}/sync`, method: 'POST', connections: callers, duration: loadSeconds,
      requests: bodies.map((body) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body })),
    });
    const heapAfter = heapUsedMbAfterGc();
    console.log(`      ${result.requests.total} syncs, ${Math.round(result.requests.average)}/s, p99 ${result.latency.p99} ms; ` +
      `heap ${heapBefore.toFixed(1)} -> ${heapAfter.toFixed(1)} MB`);
    expect(result.requests.total).to.be.greaterThan(loadSeconds * 10);
    expect({ errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx }).to.deep.equal({ errors: 0, timeouts: 0, non2xx: 0 });
    expect(heapAfter - heapBefore).to.be.below(maxHeapGrowthMb);
  });
});
