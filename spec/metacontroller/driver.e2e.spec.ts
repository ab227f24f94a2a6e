// What breaks installs, through the driver that plays Metacontroller from the shipped
// CompositeController: the host name it calls and checks the certificate for, a hook-token
// rotation while it keeps the token it read at start, a cache that lags behind its own
// writes, a Secret of the requested name that is not the request's child, and labels its
// selector reserves.
import { CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { bindingOf } from '../../server/kube/tokens.js';
import { silentLogger } from '../../server/log.js';
import { createWebhook } from '../../server/webhook.js';
import { eventually } from '../../harness/eventually.js';
import { signal } from '../../harness/signal.js';
import { apiErrorCode, condition } from '../../harness/kube-helpers.js';
import { HookError, MetacontrollerDriver, TooManyRequestsError } from '../../harness/metacontroller/driver.js';
import { readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, serviceNetwork, WebhookEnv } from '../../harness/webhook-env.js';


describe('the driver plays Metacontroller v4.17 from the shipped CompositeController (real API servers)', function () {
  let env: WebhookEnv;
  let counter = 0;
  const spec = (name: string, extra: Record<string, unknown> = {}) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: 'dpu-cplane-tenant1' }, type: 'kubeconfig',
    secret: { name: `${name}-cred` }, ...extra,
  });
  const fresh = () => `mc-${++counter}`;
  const secretOf = async (name: string) => {
    const found = await readSecret(env.hostConfig(), `${name}-cred`);
    if (!found) throw new Error(`no Secret ${name}-cred`);
    return found;
  };
  /** The anchor Secrets request `name` has in the target cluster (a live list: the ground truth, not the status). */
  const anchorsInTarget = async (name: string) => (await env.target.adminKubeConfig().makeApiClient(CoreV1Api).listNamespacedSecret({
    namespace: 'default', labelSelector: `svc.dpu.nvidia.com/credential-request-name=${name},svc.dpu.nvidia.com/token-anchor=true`,
  })).items;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  it('calls every hook at https://{service}.{namespace}:443 with the hook token, and the request becomes Ready', async function () {
    const name = fresh();
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    const urls = new Set(env.driver.calls.map((call) => call.url.replace(/\/[a-z]+$/, '')));
    expect([...urls]).to.deep.equal([`https://${env.install.serviceHost}:443`]);
    expect(env.install.serviceHost).to.equal('dpu-credential-webhook.dpu-credential-webhook');
    expect(env.driver.calls.every((call) => call.statusCode === 200)).to.equal(true);
    const request = await env.driver.readParent('default', name);
    expect(condition(request, 'Ready')).to.include({ status: 'True', reason: 'Success' });
    expect(request?.metadata?.finalizers).to.include(env.driver.finalizer);
    const secret = await secretOf(name);
    expect(secret.metadata?.labels?.['controller-uid']).to.equal(request?.metadata?.uid);
    expect(secret.metadata?.ownerReferences?.[0]).to.include({ uid: request?.metadata?.uid, controller: true, blockOwnerDeletion: true });
  });

  it('costs Metacontroller 7 API calls for a new request (finalizer, Secret, Pending and Ready status), then 1 read per resync', async function () {
    const name = fresh();
    await env.createRequest(name, spec(name));
    const before = { ...env.driver.api.calls };
    const callsSince = (start: Record<string, number>) =>
      Object.fromEntries(Object.entries(env.driver.api.calls).map(([verb, count]) => [verb, count - (start[verb] ?? 0)]).filter(([, count]) => count));
    await env.driver.reconcile('default', name);
    // GET + PUT (finalizer), PATCH (the Secret), GET + PUT status twice: Pending, then Ready once the Secret is seen.
    expect(callsSince(before)).to.deep.equal({ GET: 3, PUT: 3, PATCH: 1 });
    // A resync with nothing new: the same status and the same Secret, so Metacontroller only reads the parent live.
    const settled = { ...env.driver.api.calls };
    await env.driver.reconcile('default', name);
    expect(callsSince(settled)).to.deep.equal({ GET: 1 });
  });

  it('fails every hook call when the serving certificate lacks {service}.{namespace} (0.1.0 shipped only the .svc names)', async function () {
    const svcOnly = env.install.certificates.dnsNames.filter((dnsName) => dnsName.endsWith('.svc') || dnsName.endsWith('.svc.cluster.local'));
    expect(svcOnly).to.have.length.greaterThan(0);
    const certificate = await env.install.pki.issue('svc-only', svcOnly);
    const dir = env.install.tlsVolume.dir.replace(/tls$/, 'svc-only');
    const { SecretVolume } = await import('../../harness/secret-volume.js');
    const volume = new SecretVolume(dir);
    await volume.write({ 'tls.crt': certificate.certPem, 'tls.key': certificate.keyPem });
    // A second webhook over the same clusters, serving that certificate.
    const wrongNames = await createWebhook({
      config: {
        port: 0, remoteTimeoutMs: 3_000, maxBodyBytes: 1024 * 1024, filePollIntervalMs: 50, shutdownTimeoutMs: 1_000,
        hookBearerTokenFile: env.install.tokenFile, tlsCertFile: volume.path('tls.crt'), tlsKeyFile: volume.path('tls.key'),
      },
      clusters: env.clusters, metrics: env.metrics, now: env.clock.now, log: silentLogger, listenHost: '127.0.0.1',
    });
    const driver = await MetacontrollerDriver.start({ host: env.hostConfig(), network: await serviceNetwork(wrongNames.port) });
    try {
      const name = fresh();
      await env.createRequest(name, spec(name));
      const failure = await driver.reconcile('default', name).then(() => undefined, (error: Error) => error);
      expect(failure).to.be.instanceOf(HookError);
      expect(failure?.message).to.match(/altnames|does not match/i).and.to.contain(env.install.serviceHost);
      expect(await readSecret(env.hostConfig(), `${name}-cred`)).to.equal(undefined);
    } finally {
      driver.close();
      await wrongNames.stop();
    }
  });

  it('rotates the hook token without a failed call: token → previous, new token, Metacontroller restarted, previous deleted; then the old token gets 401', async function () {
    this.timeout(60_000);
    const name = fresh();
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    const oldToken = env.install.hookToken;

    // Metacontroller keeps syncing throughout; a restart happens between two of its calls.
    const failures: string[] = [];
    let calls = 0;
    let running = true;
    /** Asked for by the test; the loop acknowledges it between two calls, then waits until resumed. */
    let pause: { acknowledge: () => void; resumed: Promise<void> } | undefined;
    const loop = (async () => {
      while (running) {
        if (pause) {
          pause.acknowledge();
          await pause.resumed;
        }
        try {
          await env.driver.syncOnce('default', name);
          calls += 1;
        } catch (error) {
          failures.push((error as Error).message);
        }
        await sleep(20); // Metacontroller's pace, not a synchronisation
      }
    })();
    const restartMetacontroller = async () => {
      const acknowledged = signal();
      const resumed = signal();
      pause = { acknowledge: acknowledged.resolve, resumed: resumed.promise };
      await acknowledged.promise; // the call in flight has finished, and no other starts
      await env.restartMetacontroller();
      pause = undefined;
      resumed.resolve();
    };
    const callsAfter = async (step: () => Promise<void>) => {
      const before = calls;
      await step();
      await eventually(() => calls >= before + 5 || failures.length > 0, 'five more calls', { timeoutMs: 20_000, intervalMs: 20 });
    };

    const newToken = randomBytes(32).toString('hex');
    await callsAfter(() => env.install.setHookTokens({ token: newToken, previous: oldToken }));
    await callsAfter(restartMetacontroller);
    await callsAfter(() => env.install.setHookTokens({ token: newToken }));
    running = false;
    await loop;
    expect(failures).to.deep.equal([]);

    const body = JSON.stringify({ parent: { metadata: { name, namespace: 'default' } } });
    const oldTokenStatus = async () => (await env.install.call(env.securePort, '/customize', { method: 'POST', body, token: oldToken })).status;
    await eventually(async () => await oldTokenStatus() === 401, 'the old token gets 401', { timeoutMs: 5_000 });
    expect(await oldTokenStatus()).to.equal(401);
    expect((await env.install.call(env.securePort, '/customize', { method: 'POST', body })).status).to.equal(200);
  });

  it('never rolls a token back when a sync sees children older than its last answer, even while the target is down', async function () {
    this.timeout(60_000);
    const name = fresh();
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    env.driver.secrets.hold();
    try {
      await env.updateRequest(name, (r) => {
        r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'leaked' };
      });
      await env.driver.syncOnce('default', name);
      const rotated = tokenIn(await secretOf(name));
      await env.target.stopApiServer();
      try {
        // The cache still shows the Secret from before the rotation.
        const stale = await env.driver.syncOnce('default', name).then(() => undefined, (error: Error) => error);
        expect(stale).to.be.instanceOf(TooManyRequestsError);
        // Whole seconds: anything else reads as 0 in Metacontroller, a retry at once without backoff.
        expect(env.driver.calls.at(-1)?.retryAfter).to.match(/^[1-9]\d*$/);
        expect((stale as TooManyRequestsError).afterSeconds).to.be.greaterThan(0);
        expect(tokenIn(await secretOf(name))).to.equal(rotated);
      } finally {
        await env.target.startApiServer();
      }
      env.driver.secrets.release();
      await env.driver.reconcile('default', name);
      expect(tokenIn(await secretOf(name))).to.equal(rotated);
      expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });
    } finally {
      env.driver.secrets.release();
    }
  });

  it('revokes after a rotation even when the sync that sees the new Secret reads a parent whose status misses the mint', async function () {
    this.timeout(60_000);
    const name = fresh();
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    await env.updateRequest(name, (r) => {
      r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': 'leaked' };
    });
    // The parent informer keeps the request as it is now: rotated, its status not yet showing the new token.
    await env.driver.parents.get('default', name);
    env.driver.parents.hold();
    try {
      const [oldAnchor] = (await env.driver.readParent('default', name))?.status?.tokenAnchors ?? [];
      await env.driver.syncOnce('default', name); // mints; the status it writes names both anchors
      expect((await env.driver.readParent('default', name))?.status?.tokenAnchors).to.have.length(2);
      await env.driver.syncOnce('default', name); // sees the new Secret, but the old status
      const status = (await env.driver.readParent('default', name))?.status;
      const newToken = tokenIn(await secretOf(name));
      expect(status?.tokenAnchors?.map((entry) => entry.anchor)).to.deep.equal([JSON.parse(Buffer.from(newToken.split('.')[1]!, 'base64url').toString())['kubernetes.io'].secret.name]);
      const targetCore = env.target.adminKubeConfig().makeApiClient(CoreV1Api);
      expect(await apiErrorCode(targetCore.readNamespacedSecret({ namespace: 'default', name: oldAnchor!.anchor }))).to.equal(404);
      expect(status?.previousTokensRevokedAt).to.be.a('string');
    } finally {
      env.driver.parents.release();
    }
  });

  it('holds a second forced rotation back by the target\'s anchor of the first when the status it reads lacks lastForcedRotationAt (a lagging parent cache)', async function () {
    this.timeout(60_000);
    const name = fresh();
    const rotate = (value: string) => env.updateRequest(name, (r) => {
      r.metadata!.annotations = { ...r.metadata!.annotations, 'svc.dpu.nvidia.com/rotate': value };
    });
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    // Two Metacontroller workers' views: one read the request rotated to 1, the other rotated to 2, both before any
    // status of a forced rotation was written (the second rotation came while the first sync was in flight).
    const lagging = await MetacontrollerDriver.start({ host: env.hostConfig(), network: await serviceNetwork(env.securePort) });
    try {
      await rotate('1');
      await env.driver.parents.get('default', name);
      env.driver.parents.hold();
      await rotate('2');
      await lagging.parents.get('default', name);
      lagging.parents.hold();
      await env.driver.syncOnce('default', name); // mints for rotation 1
      const first = tokenIn(await secretOf(name));
      expect((await env.driver.readParent('default', name))?.status?.lastForcedRotationAt).to.be.a('string');

      const { response } = await lagging.syncOnce('default', name); // rotation 2, read with a status that predates the first
      expect(tokenIn(await secretOf(name))).to.equal(first);
      // No token for rotation 2 (the one before the rotations is revoked: the Secret holds the first).
      const anchors = await anchorsInTarget(name);
      expect(anchors.map((anchor) => anchor.metadata?.name)).to.deep.equal([bindingOf(first).anchor]);
      expect(Date.parse(response.status?.forcedRotationAllowedAt ?? '')).to.equal(anchors[0]!.metadata!.creationTimestamp!.getTime() + 60_000);
      expect(response.resyncAfterSeconds).to.be.at.most(60);
    } finally {
      env.driver.parents.release();
      lagging.close();
    }
  });

  describe('a Secret of the requested name that is not the request\'s child (left by DPF\'s controller, or someone else\'s)', function () {
    const leftBehindData = { kubeconfig: Buffer.from('left by DPF').toString('base64') };
    /** `adoptFor`: the Secret's editor consents to that request taking it over. */
    const leftBehind = async (name: string, adoptFor?: string, shape: { type?: string; immutable?: boolean } = {}) => {
      await env.hostConfig().makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace: 'default',
        body: {
          metadata: { name: `${name}-cred`, ...(adoptFor ? { annotations: { 'svc.dpu.nvidia.com/adopt-for-request': adoptFor } } : {}) },
          type: shape.type ?? 'Opaque',
          ...(shape.immutable ? { immutable: true } : {}),
          data: leftBehindData,
        },
      });
    };

    for (const { what, shape, says } of [
      { what: 'immutable', shape: { immutable: true }, says: 'it is immutable' },
      { what: 'of another type', shape: { type: 'example.com/other' }, says: 'it is of type example.com/other, and an output Secret is Opaque' },
    ]) {
      it(`with consent, but ${what}: SecretNotWritable, and no token is minted for it however often it is synced past the settle window`, async function () {
        this.timeout(60_000);
        const name = fresh();
        await leftBehind(name, name, shape);
        await env.createRequest(name, spec(name));
        try {
          for (let poke = 1; poke <= 4; poke += 1) {
            env.clock.advance(31_000);
            await env.driver.reconcile('default', name).catch(() => undefined);
          }
        } finally {
          env.clock.reset();
        }
        const request = await env.driver.readParent('default', name);
        expect(condition(request, 'Ready')).to.include({ status: 'False', reason: 'SecretNotWritable' });
        expect(condition(request, 'Ready')?.message).to.contain(`secret default/${name}-cred cannot be written: ${says}`);
        expect(await anchorsInTarget(name)).to.deep.equal([]);
        expect(request?.status?.tokenAnchors ?? []).to.deep.equal([]);
        expect((await secretOf(name)).data).to.deep.equal(leftBehindData);
      });
    }

    it('is never written without its editor\'s consent, even under server-side-apply: SecretNotOwned, untouched through create, resync and delete', async function () {
      const name = fresh();
      await leftBehind(name);
      await env.createRequest(name, spec(name));
      const { response } = await env.driver.reconcile('default', name);
      expect(response.children).to.deep.equal([]);
      const request = await env.driver.readParent('default', name);
      expect(condition(request, 'Ready')).to.include({ status: 'False', reason: 'SecretNotOwned' });
      expect(condition(request, 'Ready')?.message).to.contain(`secret default/${name}-cred exists and is not this request's`)
        .and.to.contain(`svc.dpu.nvidia.com/adopt-for-request=${name}`);
      // What the webhook read of it to decide: its metadata, never its data.
      const seen = await env.clusters.host.readSecretMetadata('default', `${name}-cred`);
      expect(seen?.metadata?.name).to.equal(`${name}-cred`);
      expect(seen).to.not.have.property('data');
      await env.driver.reconcile('default', name);
      await env.deleteRequest(name);
      await env.driver.reconcile('default', name);
      const untouched = await secretOf(name);
      expect(untouched.data).to.deep.equal(leftBehindData);
      expect(untouched.metadata?.ownerReferences ?? []).to.deep.equal([]);
      expect(untouched.metadata?.labels ?? {}).to.not.have.property('controller-uid');
    });

    it('with consent, under dynamic-apply: never Ready, SecretNotAdopted with what to do, and the Secret is left as it was', async function () {
      const driver = await MetacontrollerDriver.start({ host: env.hostConfig(), network: await serviceNetwork(env.securePort), applyStrategy: 'dynamic-apply' });
      const name = fresh();
      try {
        await leftBehind(name, name);
        await env.createRequest(name, spec(name));
        await driver.reconcile('default', name);
        expect(driver.childEvents).to.deep.include({ kind: 'create-skipped-already-exists', name: `${name}-cred` });
        expect(condition(await driver.readParent('default', name), 'Ready')).to.include({ status: 'False', reason: 'Pending' });
        env.clock.advance(31_000);
        try {
          await driver.reconcile('default', name);
        } finally {
          env.clock.reset();
        }
        const request = await driver.readParent('default', name);
        expect(condition(request, 'SecretReconciled')).to.include({ status: 'False', reason: 'SecretNotAdopted' });
        expect(condition(request, 'Ready')?.message).to.contain('server-side-apply');
        expect((await secretOf(name)).data?.kubeconfig).to.equal(Buffer.from('left by DPF').toString('base64'));
      } finally {
        driver.close();
      }
    });

    it('with consent, under server-side-apply (as the README asks): taken over at the first sync, and Ready once observed', async function () {
      const name = fresh();
      await leftBehind(name, name);
      await env.createRequest(name, spec(name));
      await env.driver.reconcile('default', name);
      const secret = await secretOf(name);
      const request = await env.driver.readParent('default', name);
      expect(secret.metadata?.ownerReferences?.[0]?.uid).to.equal(request?.metadata?.uid);
      expect(tokenIn(secret)).to.match(/^ey/);
      expect(condition(request, 'Ready')).to.include({ status: 'True', reason: 'Success' });
    });
  });

  it('refuses at apply a controller-uid label for the Secret (Metacontroller\'s selector label)', async function () {
    const name = fresh();
    const code = await apiErrorCode(env.createRequest(name, spec(name, { metadata: { labels: { 'controller-uid': 'x' } } })));
    expect(code).to.equal(422);
  });
});
