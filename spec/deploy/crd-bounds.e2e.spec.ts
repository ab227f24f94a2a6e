// The bounds the CRD puts on one request, on a real API server: a token lifetime of at most
// 720h, and labels and annotations for the output Secret small enough that Metacontroller
// never applies a huge one. The API server must also accept the rules' CEL cost.
import { expect } from 'chai';
import { parse } from 'yaml';
import { readFile } from 'node:fs/promises';
import { KubeApiError, KubeRestClient } from '../../server/kube/rest.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { createObjects, readManifests } from '../../harness/kube-helpers.js';
import { controlPlaneStartTimeoutMs, requestCrdPath } from '../../harness/webhook-env.js';
import { connectionOf } from '../../harness/connection.js';

const requestsPath = '/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/default/dpuservicecredentialrequests';
const crdPath = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/dpuservicecredentialrequests.svc.dpu.nvidia.com';

interface Rule {
  rule: string;
}

interface StoredCrd {
  spec: { versions: { schema: { openAPIV3Schema: Record<string, unknown> } }[] };
}

/** The x-kubernetes-validations rules anywhere in a schema, in document order. */
function rulesIn(schema: unknown): string[] {
  if (typeof schema !== 'object' || schema === null) return [];
  return Object.entries(schema).flatMap(([key, value]) =>
    key === 'x-kubernetes-validations' ? (value as Rule[]).map((entry) => entry.rule) : rulesIn(value));
}

/** `count` entries whose keys are `prefix-<i>`, each mapped by `value`. */
const entries = (count: number, prefix: string, value: (i: number) => string = (i) => `v${i}`) =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}-${i}`, value(i)]));

describe('the CRD bounds one request: lifetime and Secret size (real API server)', function () {
  let plane: ControlPlane;
  let client: KubeRestClient;
  let counter = 0;

  /** Creates a request; resolves to the API server's refusal, or undefined when it was created. */
  const create = async (spec: Record<string, unknown>): Promise<KubeApiError | undefined> => {
    const name = `bounds-${++counter}`;
    try {
      await client.request('POST', requestsPath, {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
        spec: { serviceAccount: { name: `${name}-sa` }, type: 'kubeconfig', secret: { name: `${name}-cred` }, ...spec },
      });
      return undefined;
    } catch (error) {
      if (error instanceof KubeApiError) return error;
      throw error;
    }
  };
  const refusal = async (spec: Record<string, unknown>): Promise<KubeApiError> => {
    const error = await create(spec);
    if (!error) expect.fail(`the API server accepted ${JSON.stringify(spec).slice(0, 200)}`);
    expect(error.statusCode).to.equal(422);
    return error;
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'crd-bounds' });
    // A rule whose estimated cost is over the API server's budget fails here, with 422.
    await createObjects(plane.adminKubeConfig(), await readManifests(requestCrdPath));
    client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
  });

  after(async function () {
    client?.close();
    await plane?.stop();
  });

  it('is stored with every CEL rule of the file: the API server accepted their estimated cost', async function () {
    const file = parse(await readFile(requestCrdPath, 'utf8')) as StoredCrd;
    const stored = await client.request<StoredCrd>('GET', crdPath);
    const written = rulesIn(file.spec.versions[0]!.schema.openAPIV3Schema);
    expect(written).to.include.members([
      "duration(self) <= duration('720h')",
      'self.all(key, size(key) <= 317)',
      'self.map(key, size(key) + size(bytes(self[key]))).sum() <= 65536',
    ]);
    // The API server stores properties in its own order.
    expect(rulesIn(stored.spec.versions[0]!.schema.openAPIV3Schema).sort()).to.deep.equal(written.sort());
  });

  describe('spec.duration', function () {
    it('takes durations up to 720h: 10m, DPF\'s 24h, 719h59m59s, 720h', async function () {
      for (const duration of ['10m', '24h', '719h59m59s', '720h']) expect(await create({ duration }), duration).to.equal(undefined);
    });

    for (const duration of ['720h0m1s', '721h', '87600h']) {
      it(`refuses ${duration}, saying the ceiling and that the webhook's limit is usually lower`, async function () {
        const error = await refusal({ duration });
        expect(error.message).to.contain('spec.duration')
          .and.to.contain("duration must be at most 720h; the webhook's own limit, MAX_TOKEN_DURATION, is usually lower");
      });
    }

    it('refuses a duration past what a Go duration holds (about 2,562,047h)', async function () {
      const error = await refusal({ duration: '99999999999h' });
      expect(error.message).to.contain('spec.duration').and.to.contain('duration must be at most 720h');
    });
  });

  describe('status.tokenAnchors', function () {
    it('takes 32 anchors and refuses a 33rd (the webhook mints no token it could not record: TokenLimitReached)', async function () {
      expect(await create({})).to.equal(undefined);
      const made = `bounds-${counter}`;
      const anchors = (count: number) => Array.from({ length: count }, (_, i) =>
        ({ serviceAccount: 'default/sa', anchor: `sa-token-${i}`, rotation: '', expiresAt: '2030-01-01T00:00:00Z' }));
      const writeStatus = (count: number) => client.request('PATCH', `${requestsPath}/${made}/status`,
        { status: { tokenAnchors: anchors(count) } }, { contentType: 'application/merge-patch+json' });
      await writeStatus(32);
      const error = await writeStatus(33).then(() => undefined, (thrown: unknown) => thrown);
      expect(error).to.be.instanceOf(KubeApiError);
      expect((error as KubeApiError).statusCode).to.equal(422);
      expect((error as KubeApiError).message).to.contain('status.tokenAnchors').and.to.contain('must have at most 32 items');
    });
  });

  describe('spec.metadata.labels', function () {
    it('takes 64 labels with 63-character values and 317-character keys', async function () {
      // A 253-character prefix, '/', a 63-character name.
      const key = (i: number) => `${'p'.repeat(250)}.io/${'n'.repeat(60)}-${String(i).padStart(2, '0')}`;
      const labels = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [key(i), 'v'.repeat(63)]));
      expect(Object.keys(labels).map((k) => k.length)).to.deep.equal(Array(64).fill(317));
      expect(await create({ metadata: { labels } })).to.equal(undefined);
    });

    it('refuses a 65th label', async function () {
      const error = await refusal({ metadata: { labels: entries(65, 'label') } });
      expect(error.message).to.contain('spec.metadata.labels').and.to.contain('must have at most 64 items');
    });

    it('refuses a label value longer than 63 characters', async function () {
      const error = await refusal({ metadata: { labels: { team: 'v'.repeat(64) } } });
      expect(error.message).to.contain('spec.metadata.labels.team').and.to.contain('Too long');
    });

    it('refuses a label key longer than 317 characters', async function () {
      const key = `${'p'.repeat(254)}/${'n'.repeat(63)}`;
      expect(key).to.have.length(318);
      const error = await refusal({ metadata: { labels: { [key]: 'v' } } });
      expect(error.message).to.contain('a label key is at most 317 characters');
    });
  });

  describe('spec.metadata.annotations', function () {
    // Keys "a-0".."a-9" (3 bytes each) plus values: `size` bytes in total.
    const annotationsOf = (bytes: number, unit = 'x') => {
      const keys = 10 * 3;
      const perValue = (bytes - keys) / 10 / Buffer.byteLength(unit);
      return entries(10, 'a', () => unit.repeat(perValue));
    };
    const totalBytes = (annotations: Record<string, string>) =>
      Object.entries(annotations).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0);

    it('takes 64 annotations, and 64 KiB of keys and values together', async function () {
      expect(await create({ metadata: { annotations: entries(64, 'annotation') } })).to.equal(undefined);
      const full = { ...annotationsOf(65_530), b: 'xyz', c: 'z' };
      expect(totalBytes(full)).to.equal(65_536);
      expect(await create({ metadata: { annotations: full } })).to.equal(undefined);
    });

    it('refuses a 65th annotation', async function () {
      const error = await refusal({ metadata: { annotations: entries(65, 'annotation') } });
      expect(error.message).to.contain('spec.metadata.annotations').and.to.contain('must have at most 64 items');
    });

    it('refuses one byte more than 64 KiB', async function () {
      const over = { ...annotationsOf(65_530), b: 'xyz', c: 'zz' };
      expect(totalBytes(over)).to.equal(65_537);
      const error = await refusal({ metadata: { annotations: over } });
      expect(error.message).to.contain('annotations may hold at most 64 KiB (65536 bytes of keys and values together)');
    });

    it('counts bytes, as Kubernetes does, not characters: 22,000 three-byte characters are too many', async function () {
      const wide = { euro: '€'.repeat(22_000) };
      expect(totalBytes(wide)).to.be.above(65_536);
      expect([...wide.euro].length).to.be.below(65_536);
      const error = await refusal({ metadata: { annotations: wide } });
      expect(error.message).to.contain('annotations may hold at most 64 KiB');
    });
  });
});
