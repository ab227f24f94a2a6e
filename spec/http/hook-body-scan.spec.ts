// The streaming look at an oversized hook body: where the top-level fields lie, how large
// each child is, whatever the chunking, with fixed memory and one pass.
import { expect } from 'chai';
import fc from 'fast-check';
import { HookBodyScanner, type BodyLayout } from '../../server/http/hook-body-scan.js';

const scan = (text: string | Buffer, chunkSizes: number[] = []): BodyLayout => {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  const scanner = new HookBodyScanner(3);
  let at = 0;
  for (const size of chunkSizes) {
    if (at >= body.length) break;
    scanner.write(body.subarray(at, at + Math.max(1, size)));
    at += Math.max(1, size);
  }
  if (at < body.length) scanner.write(body.subarray(at));
  return scanner.end();
};

const fieldText = (body: string, layout: BodyLayout, field: string) => {
  const extent = layout.fields.get(field);
  return extent && Buffer.from(body).subarray(extent.start, extent.end).toString('utf8');
};

/** A body as Metacontroller (Go's encoding/json) lays it out: controller, parent, children, related, finalizing. */
const hookBody = (children: Record<string, unknown>, finalizing: boolean) => JSON.stringify({
  controller: { kind: 'CompositeController', metadata: { name: 'c' } },
  parent: { apiVersion: 'v1', kind: 'R', metadata: { name: 'r', namespace: 'ns', annotations: { 'a"}{[': 'b\\"]}' } }, status: { conditions: [] } },
  children: { 'Secret.v1': children },
  related: {},
  finalizing,
});

describe('HookBodyScanner', function () {
  it('finds the top-level fields, the children\'s sizes (largest first) and finalizing, in a body laid out as Metacontroller sends it', function () {
    const children = Object.fromEntries([10, 300, 20, 200, 5].map((size, n) => [`ns/s-${n}`, { data: { pad: 'x'.repeat(size), tricky: '"}]\\' } }]));
    const body = hookBody(children, true);
    const layout = scan(body);
    expect(JSON.parse(fieldText(body, layout, 'parent')!)).to.deep.equal(JSON.parse(body).parent);
    expect(JSON.parse(fieldText(body, layout, 'controller')!)).to.deep.equal(JSON.parse(body).controller);
    expect(fieldText(body, layout, 'related')).to.equal('{}');
    expect(fieldText(body, layout, 'finalizing')).to.equal('true');
    expect(layout.finalizing).to.equal(true);
    expect(layout.childCount).to.equal(5);
    expect(layout.largestChildren).to.deep.equal([1, 3, 2].map((n) => ({ group: 'Secret.v1', key: `ns/s-${n}`, bytes: JSON.stringify(children[`ns/s-${n}`]).length })));
    expect(layout.bytes).to.equal(Buffer.byteLength(body));
    expect(layout.duplicated.size).to.equal(0);
  });

  it('reads keys spelled with escapes, and notes a top-level field sent twice', function () {
    const body = '{"par\\u0065nt":{"a":1},"children":{"Secret.v1":{"ns\\/x":{"k":"v"}}},"parent":{"b":2},"finalizing":false}';
    const layout = scan(body);
    expect(fieldText(body, layout, 'parent')).to.equal('{"a":1}');
    expect([...layout.duplicated]).to.deep.equal(['parent']);
    expect(layout.largestChildren).to.deep.equal([{ group: 'Secret.v1', key: 'ns/x', bytes: 9 }]);
    expect(layout.finalizing).to.equal(false);
  });

  it('finds the same layout whatever the chunks (property-based)', function () {
    const child = fc.record({ data: fc.dictionary(fc.string(), fc.string({ unit: fc.constantFrom('a', '"', '\\', '{', '}', '[', ']', ',', ':', 'é', '\u2028') })) });
    fc.assert(fc.property(fc.dictionary(fc.string({ minLength: 1 }), child, { maxKeys: 6 }), fc.boolean(), fc.array(fc.integer({ min: 1, max: 40 })),
      (children, finalizing, chunks) => {
        const body = hookBody(children, finalizing);
        const whole = scan(body);
        const chunked = scan(body, chunks);
        expect(chunked).to.deep.equal(whole);
        expect(whole.childCount).to.equal(Object.keys(children).length);
        expect(whole.finalizing).to.equal(finalizing);
        for (const kept of whole.largestChildren) expect(kept.bytes).to.equal(Buffer.byteLength(JSON.stringify(children[kept.key])));
      }), { numRuns: 300 });
  });

  it('keeps nothing of nesting a million levels deep, and still finds the fields around it', function () {
    const body = `{"parent":{"metadata":{}},"children":{"Secret.v1":{"ns/deep":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}},"finalizing":true}`;
    const layout = scan(body, [4096]);
    expect(fieldText(body, layout, 'parent')).to.equal('{"metadata":{}}');
    expect(layout.largestChildren).to.deep.equal([{ group: 'Secret.v1', key: 'ns/deep', bytes: 2_000_000 }]);
    expect(layout.finalizing).to.equal(true);
  });

  it('looks through 64 MiB of Secret data in one pass (figures printed)', function () {
    this.timeout(60_000);
    const pad = 'QUFB'.repeat(1024 * 1024 / 4);
    const chunk = Buffer.from(`,"ns/pad":{"data":{"pad":"${pad}"}}`);
    const scanner = new HookBodyScanner();
    const started = performance.now();
    scanner.write(Buffer.from('{"parent":{},"children":{"Secret.v1":{"ns/first":{}'));
    for (let n = 0; n < 64; n += 1) scanner.write(chunk);
    scanner.write(Buffer.from('}},"finalizing":false}'));
    const layout = scanner.end();
    const ms = performance.now() - started;
    console.log(`      scanned ${(layout.bytes / 2 ** 20).toFixed(0)} MiB in ${ms.toFixed(0)} ms (${(layout.bytes / 2 ** 20 / (ms / 1000)).toFixed(0)} MiB/s)`);
    expect(layout.childCount).to.equal(65);
    expect(layout.finalizing).to.equal(false);
  });
});
