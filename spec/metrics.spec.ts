import { expect } from 'chai';
import type { SyncResponse } from '../server/metacontroller.js';
import { forgetTokenAfterSeconds, Metrics } from '../server/metrics.js';

const tokenMetrics = ['expiration', 'issued', 'last_sync'] as const;

/** The request's value of each token gauge in the exposition text; undefined where absent. */
async function tokenSeries(metrics: Metrics, name = 'r'): Promise<Record<(typeof tokenMetrics)[number], number | undefined>> {
  const text = await metrics.exposition();
  const valueOf = (metric: string) => {
    const line = new RegExp(`^dpu_credential_token_${metric}_timestamp_seconds\\{namespace="default",name="${name}"\\} (\\S+)$`, 'm').exec(text);
    return line ? Number(line[1]) : undefined;
  };
  return { expiration: valueOf('expiration'), issued: valueOf('issued'), last_sync: valueOf('last_sync') };
}

const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cred', namespace: 'default' } };
const answer = (issuedAt: string | undefined, expirationTimestamp: string | undefined, extra: Partial<SyncResponse> = {}): SyncResponse => ({
  status: { ...(issuedAt ? { issuedAt } : {}), ...(expirationTimestamp ? { expirationTimestamp } : {}) },
  children: [secret],
  resyncAfterSeconds: 60,
  ...extra,
});
const seconds = (iso: string) => Date.parse(iso) / 1_000;

describe('Metrics: token gauges', function () {
  let nowMs: number;
  let metrics: Metrics;
  beforeEach(function () {
    nowMs = Date.parse('2026-01-01T00:10:00Z');
    metrics = new Metrics({ now: () => nowMs });
  });

  it('exports the answered token\'s expiry and issue time, and when this replica last synced the request', async function () {
    metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
    expect(await tokenSeries(metrics)).to.deep.equal({
      expiration: seconds('2026-01-01T01:00:00Z'), issued: seconds('2026-01-01T00:00:00Z'), last_sync: seconds('2026-01-01T00:10:00Z'),
    });
  });

  it('replaces the token on renewal and moves the last sync on every sync', async function () {
    metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
    nowMs += 40 * 60_000;
    metrics.observeToken('default', 'r', answer('2026-01-01T00:50:00Z', '2026-01-01T01:50:00Z'));
    expect(await tokenSeries(metrics)).to.deep.equal({
      expiration: seconds('2026-01-01T01:50:00Z'), issued: seconds('2026-01-01T00:50:00Z'), last_sync: seconds('2026-01-01T00:50:00Z'),
    });
  });

  for (const finalized of [true, false]) {
    it(`forgets a request on a finalize answer (finalized: ${finalized}): it gets no new token while it is being deleted`, async function () {
      metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
      metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z', { finalized }));
      expect(await tokenSeries(metrics)).to.deep.equal({ expiration: undefined, issued: undefined, last_sync: undefined });
    });
  }

  it('forgets a request whose sync answered without a token (invalid before any token, or its cluster gone)', async function () {
    metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
    metrics.observeToken('default', 'r', answer(undefined, undefined, { children: [] }));
    expect(await tokenSeries(metrics)).to.deep.equal({ expiration: undefined, issued: undefined, last_sync: undefined });
  });

  it(`forgets, at the next scrape, a request it has not synced for ${forgetTokenAfterSeconds / 60} minutes, and only that one`, async function () {
    metrics.observeToken('default', 'served-elsewhere', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
    nowMs += 5 * 60_000;
    metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
    nowMs += forgetTokenAfterSeconds * 1_000 - 5 * 60_000;
    expect((await tokenSeries(metrics, 'served-elsewhere')).expiration, 'exactly at the limit').to.equal(seconds('2026-01-01T01:00:00Z'));
    nowMs += 1_000;
    expect(await tokenSeries(metrics, 'served-elsewhere')).to.deep.equal({ expiration: undefined, issued: undefined, last_sync: undefined });
    expect((await tokenSeries(metrics, 'r')).last_sync).to.equal(seconds('2026-01-01T00:15:00Z'));
  });

  it('tracks a forgotten request again from its next sync', async function () {
    metrics.observeToken('default', 'r', answer('2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'));
    nowMs += (forgetTokenAfterSeconds + 1) * 1_000;
    expect((await tokenSeries(metrics)).expiration).to.equal(undefined);
    metrics.observeToken('default', 'r', answer('2026-01-01T00:20:00Z', '2026-01-01T01:20:00Z'));
    expect((await tokenSeries(metrics)).expiration).to.equal(seconds('2026-01-01T01:20:00Z'));
  });
});
