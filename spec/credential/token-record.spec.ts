import { expect } from 'chai';
import fc from 'fast-check';
import type { SecretObject } from '../../server/api.js';
import { tokenAnnotations } from '../../server/credential/names.js';
import { renderSecret, type ClusterEndpoint } from '../../server/credential/render.js';
import { readTokenRecord } from '../../server/credential/token-record.js';
import type { TokenRecord } from '../../server/credential/token.js';
import { testCaPem, tokenRecord, validSpec } from './fixtures.js';

const endpoint: ClusterEndpoint = { clusterName: 'dpu-cplane-tenant1', server: 'https://10.0.0.1:6443', caPem: testCaPem };
const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const decoded = (value: string | undefined) => Buffer.from(value ?? '', 'base64').toString('utf8');

/** A Secret as the webhook writes it, with its kubeconfig edited by `edit`. */
function editedKubeconfigSecret(edit: (kubeconfig: string) => string): SecretObject {
  const secret = renderSecret(validSpec({ type: 'kubeconfig' }), endpoint, tokenRecord());
  return { ...secret, data: { kubeconfig: base64(edit(decoded(secret.data?.kubeconfig))) } };
}

/** Untrusted JSON where the types promise strings. */
const untrusted = (value: unknown) => value as SecretObject;

/** What any record read back must be, whatever the Secret held. */
function expectUsable(record: TokenRecord): void {
  expect(record.token).to.match(/^[!-~]+$/);
  expect(record.issuedAt.getTime()).to.be.below(record.expiresAt.getTime());
  expect(record.expiresAt.toISOString()).to.match(/^\d{4}-/);
  for (const field of ['serviceAccount', 'serviceAccountUid', 'targetCluster', 'targetClusterUid', 'duration', 'rotation'] as const) {
    expect(record[field], field).to.be.a('string');
  }
}

describe('readTokenRecord', function () {
  it('reads a hand-edited token line holding a raw control character as no token (mint), not an error', function () {
    const secret = editedKubeconfigSecret((text) => text.replace(/^ {6}token: .*$/m, '      token: "header.pay\u0001load.signature"'));
    expect(decoded(secret.data?.kubeconfig)).to.contain('      token: "header.pay\u0001load.signature"\n');
    expect(readTokenRecord(secret)).to.equal(undefined);
  });

  it('reads a TOKEN_FILE holding control characters or spaces as no token', function () {
    const secret = renderSecret(validSpec({ type: 'tokenFile' }), endpoint, tokenRecord());
    for (const token of ['header.pay\u0000load', 'two words', 'caf\u00e9']) {
      expect(readTokenRecord({ ...secret, data: { ...secret.data, TOKEN_FILE: base64(token) } }), token).to.equal(undefined);
    }
  });

  it('still reads a token that the rendered line had to escape, through the YAML fallback', function () {
    const odd = tokenRecord({ token: 'quote"and\\backslash' });
    expect(readTokenRecord(renderSecret(validSpec({ type: 'kubeconfig' }), endpoint, odd))).to.deep.equal(odd);
  });

  it('reads data and annotations of the wrong JSON types as no record', function () {
    const secret = renderSecret(validSpec({ type: 'tokenFile' }), endpoint, tokenRecord());
    const annotations = secret.metadata?.annotations ?? {};
    const cases: [string, unknown][] = [
      ['data that is a string', { ...secret, data: 'dG9rZW4=' }],
      ['a TOKEN_FILE that is a number', { ...secret, data: { TOKEN_FILE: 5 } }],
      ['a kubeconfig that is an object', { ...secret, data: { kubeconfig: { users: [] } } }],
      ['metadata that is null', { ...secret, metadata: null }],
      ['annotations that are a list', { ...secret, metadata: { ...secret.metadata, annotations: [annotations[tokenAnnotations.issuedAt]] } }],
      ['an issued-at that is a number', { ...secret, metadata: { ...secret.metadata, annotations: { ...annotations, [tokenAnnotations.issuedAt]: 0 } } }],
      ['an expires-at that is a list of one date', { ...secret, metadata: { ...secret.metadata, annotations: { ...annotations, [tokenAnnotations.expiresAt]: ['2026-01-01T01:00:00Z'] } } }],
      ['a Secret that is null', null],
    ];
    for (const [what, value] of cases) expect(readTokenRecord(untrusted(value)), what).to.equal(undefined);
  });

  it('reads identity annotations of the wrong JSON type as empty, so a new token is minted', function () {
    const secret = renderSecret(validSpec({ type: 'tokenFile' }), endpoint, tokenRecord());
    const annotations = { ...secret.metadata?.annotations, [tokenAnnotations.serviceAccountUid]: { uid: 'sa-uid' } };
    expect(readTokenRecord(untrusted({ ...secret, metadata: { ...secret.metadata, annotations } }))?.serviceAccountUid).to.equal('');
  });

  it('reads dates the status cannot carry, or a lifetime that is not positive, as no record', function () {
    const secret = renderSecret(validSpec({ type: 'tokenFile' }), endpoint, tokenRecord());
    const withDates = (issuedAt: string, expiresAt: string) => ({
      ...secret,
      metadata: { ...secret.metadata, annotations: { ...secret.metadata?.annotations, [tokenAnnotations.issuedAt]: issuedAt, [tokenAnnotations.expiresAt]: expiresAt } },
    });
    expect(readTokenRecord(withDates('2026-01-01T00:00:00Z', '+010000-01-01T00:00:00Z')), 'year 10000').to.equal(undefined);
    expect(readTokenRecord(withDates('2026-01-01T01:00:00Z', '2026-01-01T00:00:00Z')), 'expires before issued').to.equal(undefined);
    expect(readTokenRecord(withDates('yesterday', '2026-01-01T00:00:00Z')), 'not a date').to.equal(undefined);
    expect(readTokenRecord(withDates('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'))?.expiresAt.toISOString()).to.equal('2026-01-01T01:00:00.000Z');
  });

  it('never throws, and returns only usable records, for any Secret (property-based)', function () {
    const often = <T>(likely: fc.Arbitrary<T>, rarely: fc.Arbitrary<unknown>) =>
      fc.oneof({ weight: 4, arbitrary: likely as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: rarely });
    // Control characters, quotes and backslashes are what break a reader; uniform code points rarely hit them.
    const hostileChar = fc.oneof(fc.constantFrom('\u0000', '\u0001', '\t', '\r', '\u001b', '\u007f', '"', '\\', ' '),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }));
    const token = fc.oneof(fc.stringMatching(/^[\w.-]{1,30}$/), fc.string({ unit: hostileChar, maxLength: 30 }));
    const kubeconfig = fc.oneof(
      token.map((text) => `users:\n  - name: sa\n    user:\n      token: "${text}"\n`),
      token.map((text) => `users:\n  - user: { token: ${text} }\n`),
      token,
    );
    const wellTyped = fc.record({ TOKEN_FILE: token.map(base64), kubeconfig: kubeconfig.map(base64) }, { requiredKeys: [] });
    const anyData = fc.dictionary(fc.oneof(fc.constantFrom('TOKEN_FILE', 'kubeconfig'), fc.string()), fc.oneof(fc.string(), fc.anything()));
    const recent = fc.date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true });
    const date = often(recent.map((d) => d.toISOString()), fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.string(), fc.anything()));
    const identity = often(fc.constantFrom('default/sa', 'sa-uid', '1h', ''), fc.anything());
    const bookkeeping = fc.record({
      [tokenAnnotations.issuedAt]: date, [tokenAnnotations.expiresAt]: date,
      [tokenAnnotations.serviceAccount]: identity, [tokenAnnotations.serviceAccountUid]: identity, [tokenAnnotations.rotation]: identity,
    }, { requiredKeys: [tokenAnnotations.issuedAt, tokenAnnotations.expiresAt] });
    const annotations = often(bookkeeping, fc.oneof(fc.dictionary(fc.string(), fc.anything()), fc.anything()));
    const secret = fc.record({ metadata: often(fc.record({ name: fc.string(), annotations }), fc.anything()), data: often(wellTyped, fc.oneof(anyData, fc.anything())), type: fc.anything() });

    let read = 0;
    fc.assert(fc.property(secret, (generated) => {
      const record = readTokenRecord(untrusted(generated));
      if (record) {
        expectUsable(record);
        read += 1;
      }
    }), { numRuns: 500 });
    // The generator reaches Secrets that hold a record, not only the rejections.
    expect(read).to.be.above(0);
  });
});
