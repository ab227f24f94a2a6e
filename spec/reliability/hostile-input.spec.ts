// Hostile input at the hook: every case gets a clear 4xx or a clear condition, never a
// 5xx; an existing Secret the webhook wrote (under the spec's or the status's Secret name)
// always comes back unchanged, and a child it did not write never does. The host cluster
// here is a closed port, so any call that reaches out fails at once.
import { expect } from 'chai';
import fc from 'fast-check';
import request from 'supertest';
import { isRecord } from '../../server/api.js';
import { tokenAnnotations } from '../../server/credential/names.js';
import { unreachableHostApp } from '../../harness/unreachable-host-app.js';

const maxBodyBytes = 256 * 1024;

const existingSecret = {
  apiVersion: 'v1', kind: 'Secret',
  metadata: { name: 'cred', namespace: 'default', annotations: { 'svc.dpu.nvidia.com/token-issued-at': '2026-01-01T00:00:00Z' } },
  type: 'Opaque', data: { TOKEN_FILE: Buffer.from('still.valid.token').toString('base64') },
};

const parent = (spec: unknown, metadata: Record<string, unknown> = {}) => ({
  apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest',
  metadata: { name: 'r', namespace: 'default', uid: 'u-1', generation: 1, ...metadata }, spec,
});
const goodSpec = { serviceAccount: { name: 'sa' }, type: 'tokenFile', secret: { name: 'cred' }, duration: '1h', targetCluster: { name: 'c' } };
/** The request with the Secret the webhook wrote for it, as its status records. */
const withSecret = (body: { parent: Record<string, unknown> & { status?: object } }) => ({
  ...body, parent: { ...body.parent, status: { secret: 'default/cred', ...body.parent.status } }, children: { 'Secret.v1': { 'default/cred': existingSecret } },
});

interface Answer {
  status: number;
  body: { children?: { data?: unknown }[]; status?: { conditions?: { type: string; status: string; reason: string; message: string }[] } };
}

/**
 * The invariants every answer keeps; `sentSecret`: the one Secret in the request's children, and
 * whether the webhook wrote it (then it comes back unchanged; otherwise never).
 */
function checkAnswer(answer: Answer, sentSecret: { data?: unknown } | undefined, writtenByWebhook = true): void {
  expect(answer.status, JSON.stringify(answer.body).slice(0, 300)).to.be.oneOf([200, 400, 413, 415]);
  if (answer.status !== 200) return;
  const ready = answer.body.status?.conditions?.find((c) => c.type === 'Ready');
  expect(ready?.status).to.equal('False');
  expect(ready?.reason).to.match(/^[A-Z][A-Za-z]+$/);
  expect(ready?.message).to.be.a('string').and.not.equal('');
  if (sentSecret && writtenByWebhook) expect(answer.body.children?.map((child) => child.data)).to.deep.include(sentSecret.data);
  if (sentSecret && !writtenByWebhook) expect(answer.body.children?.map((child) => child.data) ?? []).to.not.deep.include(sentSecret.data);
}

describe('hostile input at the hook', function () {
  let app: Awaited<ReturnType<typeof unreachableHostApp>>;
  before(async function () {
    app = await unreachableHostApp({ maxBodyBytes });
  });

  const post = async (body: unknown, contentType = 'application/json'): Promise<Answer> => {
    const res = await request(app).post('/sync').set('Content-Type', contentType).send(typeof body === 'string' ? body : JSON.stringify(body));
    return { status: res.status, body: res.body as Answer['body'] };
  };

  const fixed: [string, unknown, boolean][] = [
    ['malformed JSON', '{"parent": {', false],
    ['a JSON string', '"sync"', false],
    ['null', 'null', false],
    ['a missing parent', { children: {} }, false],
    ['deep nesting', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, false],
    ['a body over the limit', { parent: parent(goodSpec), padding: 'x'.repeat(maxBodyBytes) }, false],
    ['a spec that is a string', withSecret({ parent: parent('spec') }), true],
    ['a serviceAccount that is a number', withSecret({ parent: parent({ ...goodSpec, serviceAccount: 5 }) }), true],
    ['a type that is a list', withSecret({ parent: parent({ ...goodSpec, type: ['kubeconfig'] }) }), true],
    ['labels that are a list', withSecret({ parent: parent({ ...goodSpec, metadata: { labels: ['a'] } }) }), true],
    ['unicode in names', withSecret({ parent: parent({ ...goodSpec, serviceAccount: { name: 'sérvice-äccount' } }) }), true],
    ['control characters in names', withSecret({ parent: parent({ ...goodSpec, secret: { name: 'cred\u0000\u001b[31m' } }) }), true],
    ['a name of 10,000 characters', withSecret({ parent: parent({ ...goodSpec, serviceAccount: { name: 'a'.repeat(10_000) } }) }), true],
    ['duration 9m59s', withSecret({ parent: parent({ ...goodSpec, duration: '9m59s' }) }), true],
    ['duration 0s', withSecret({ parent: parent({ ...goodSpec, duration: '0s' }) }), true],
    ['duration 1e3h', withSecret({ parent: parent({ ...goodSpec, duration: '1e3h' }) }), true],
    ['duration 100000h (valid: the host is unreachable)', withSecret({ parent: parent({ ...goodSpec, duration: '100000h' }) }), true],
    ['duration 10m (valid: the host is unreachable)', withSecret({ parent: parent({ ...goodSpec, duration: '10m' }) }), true],
    ['a duration past 2^32 seconds', withSecret({ parent: parent({ ...goodSpec, duration: '99999999999h' }) }), true],
    ['a status that is garbage', withSecret({ parent: { ...parent(goodSpec), status: { conditions: [{ type: 'Ready', lastTransitionTime: 'yesterday' }] } } }), true],
    ['the Secret under the spec\'s name, without a status', { parent: parent(goodSpec), children: { 'Secret.v1': { 'default/cred': existingSecret } } }, true],
    ['a request name over 63 characters', withSecret({ parent: parent(goodSpec, { name: 'n'.repeat(64) }) }), true],
    ['a host-cluster request (the host is unreachable)', withSecret({ parent: parent({ ...goodSpec, targetCluster: undefined }) }), true],
  ];
  for (const [what, body, sentSecret] of fixed) {
    it(`answers ${what} with a 4xx or a condition, keeping the Secret`, async function () {
      checkAnswer(await post(body), sentSecret ? existingSecret : undefined);
    });
  }

  it('never returns, reads or counts a child the webhook did not write, whatever its labels and bookkeeping', async function () {
    // A Secret of the tenant labelled with the request's controller-uid, adopted by Metacontroller: another
    // name than the spec's and the status's, a token the status does not record, the webhook's labels and annotations copied.
    const forged = {
      ...existingSecret,
      metadata: {
        name: 'padding', namespace: 'default', labels: { 'controller-uid': 'u-1', 'svc.dpu.nvidia.com/managed-by-controller': 'dpuservicecredentialrequestcontroller' },
        annotations: { [tokenAnnotations.issuedAt]: '2026-01-01T00:00:00Z', [tokenAnnotations.expiresAt]: '2099-01-01T00:00:00Z',
          [tokenAnnotations.serviceAccount]: 'kube-system/forged', [tokenAnnotations.targetCluster]: 'default/c' },
      },
      data: { TOKEN_FILE: Buffer.from('forged.token.value').toString('base64') },
    };
    for (const spec of [goodSpec, 'spec']) {
      const answer = await post({ parent: { ...parent(spec), status: { secret: 'default/cred' } }, children: { 'Secret.v1': { 'default/cred': existingSecret, 'default/padding': forged } } });
      checkAnswer(answer, existingSecret);
      checkAnswer(answer, forged, false);
      // Its ServiceAccount (in a protected namespace) was not counted as held: that would have been refused.
      const ready = answer.body.status?.conditions?.find((c) => c.type === 'Ready');
      expect(ready?.reason).to.not.equal('ReferenceNotPermitted');
      expect(JSON.stringify(answer.body.status)).to.not.contain('forged');
    }
  });

  it('answers a body that is not JSON with 415', async function () {
    expect((await post('<xml/>', 'application/xml')).status).to.equal(415);
  });

  it('answers a Secret whose rendered token line was hand-edited to hold a control character with a condition, keeping the Secret', async function () {
    const kubeconfig = 'users:\n  - name: sa\n    user:\n      token: "still.valid\u0001token"\n';
    const handEdited = { ...existingSecret, data: { kubeconfig: Buffer.from(kubeconfig).toString('base64') } };
    checkAnswer(await post({ parent: parent(goodSpec), children: { 'Secret.v1': { 'default/cred': handEdited } } }), handEdited);
  });

  it('holds for generated requests of any shape (property-based)', async function () {
    this.timeout(60_000);
    const often = <T>(likely: fc.Arbitrary<T>, rarely: fc.Arbitrary<unknown>) =>
      fc.oneof({ weight: 4, arbitrary: likely as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: rarely });
    const name = often(fc.constantFrom('sa', 'dpu-01-sa', 'a.b', 'c'), fc.oneof(fc.string({ maxLength: 70 }), fc.constantFrom('-x', 'X'), fc.integer(), fc.constant(null)));
    const ref = often(fc.record({ name, namespace: often(fc.constantFrom(undefined, 'default'), name) }, { requiredKeys: ['name'] }), fc.anything());
    const spec = fc.record({
      serviceAccount: ref, secret: ref, targetCluster: fc.option(ref, { nil: undefined }),
      type: often(fc.constantFrom('kubeconfig', 'tokenFile'), fc.oneof(fc.constantFrom('KUBECONFIG', ''), fc.anything())),
      duration: often(fc.constantFrom('1h', '10m', '1.5h', '100000h'), fc.oneof(fc.constantFrom('9m59s', '0s', '1e3h', '-1h', ''), fc.string(), fc.anything())),
      metadata: fc.oneof(fc.record({ labels: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.anything())) }, { requiredKeys: [] }), fc.anything()),
    }, { requiredKeys: ['serviceAccount', 'secret', 'type'] });
    const metadata = fc.record({
      name: fc.oneof(fc.string({ minLength: 1, maxLength: 80 }), fc.constant('r')), uid: fc.oneof(fc.uuid(), fc.string()),
      generation: fc.oneof(fc.nat(), fc.anything()), annotations: fc.option(fc.dictionary(fc.string(), fc.string()), { nil: undefined }),
    }, { requiredKeys: ['name'] });
    // An observed Secret edited by hand: its data and bookkeeping are read back on every sync.
    // Control characters, quotes and backslashes are what break a reader; uniform code points rarely hit them.
    const hostileChar = fc.oneof(fc.constantFrom('\u0000', '\u0001', '\t', '\r', '\u001b', '\u007f', '"', '\\', 'a', '.'),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
    const anyText = fc.string({ unit: hostileChar, maxLength: 40 });
    const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    const kubeconfig = anyText.map((token) => `users:\n  - name: sa\n    user:\n      token: "${token}"\n`);
    const secretData = fc.oneof(
      { weight: 2, arbitrary: fc.record({ TOKEN_FILE: anyText.map(base64), kubeconfig: kubeconfig.map(base64) }, { requiredKeys: [] }) },
      fc.dictionary(fc.oneof(fc.constantFrom('TOKEN_FILE', 'kubeconfig'), fc.string()),
        often(fc.oneof(kubeconfig, anyText).map(base64), fc.oneof(fc.string(), fc.anything()))),
    );
    const secretAnnotations = fc.dictionary(fc.oneof(fc.constantFrom(...Object.values(tokenAnnotations)), fc.string()),
      fc.oneof(fc.date({ noInvalidDate: true }).map((date) => date.toISOString()), fc.string(), fc.anything()));
    const observedSecret = fc.record({
      apiVersion: fc.constant('v1'), kind: fc.constant('Secret'),
      metadata: fc.record({ name: often(fc.constant('cred'), fc.string()), namespace: fc.constant('default'), annotations: often(secretAnnotations, fc.anything()) }),
      type: fc.anything(), data: often(secretData, fc.anything()),
    }, { requiredKeys: ['apiVersion', 'kind', 'metadata'] });
    const children = fc.oneof(
      { weight: 2, arbitrary: fc.constant({ 'Secret.v1': { 'default/cred': existingSecret } }) },
      { weight: 2, arbitrary: observedSecret.map((secret) => ({ 'Secret.v1': { [`default/${secret.metadata.name}`]: secret } })) },
      { weight: 1, arbitrary: fc.anything() },
    );
    const body = fc.record({
      parent: fc.record({ metadata: metadata.map((m) => ({ ...m, namespace: 'default' })), spec: often(spec, fc.anything()), status: often(fc.constant(undefined), fc.anything()) }),
      children,
      related: fc.oneof(fc.constant(undefined), fc.constant({}), fc.anything()),
    }, { requiredKeys: ['parent'] });

    await fc.assert(fc.asyncProperty(body, async (generated) => {
      // As it goes over the wire (undefined dropped, -0 as 0), to compare with what comes back.
      const sent = JSON.parse(JSON.stringify(generated)) as { children?: unknown; parent?: unknown };
      const onlySecrets = isRecord(sent.children) && Object.keys(sent.children).length === 1 && isRecord(sent.children['Secret.v1'])
        ? Object.values(sent.children['Secret.v1']) : [];
      const sentSecret = onlySecrets.length === 1 && isRecord(onlySecrets[0]) ? onlySecrets[0] : undefined;
      // The webhook writes only the Secret its spec names (no status here).
      const spec = isRecord(sent.parent) && isRecord(sent.parent.spec) ? sent.parent.spec : undefined;
      const named = isRecord(spec) && isRecord(spec.secret) && typeof spec.secret.name === 'string'
        ? `${typeof spec.secret.namespace === 'string' && spec.secret.namespace ? spec.secret.namespace : 'default'}/${spec.secret.name}` : undefined;
      const sentMetadata = isRecord(sentSecret?.metadata) ? sentSecret.metadata : undefined;
      const sentName = `${typeof sentMetadata?.namespace === 'string' ? sentMetadata.namespace : 'default'}/${String(sentMetadata?.name ?? '')}`;
      checkAnswer(await post(sent), sentSecret, named === sentName);
    }), { numRuns: 300 });
  });
});
