// The quick view of docs/operations.md (deploy/monitoring/quick-view.yaml) run by promtool on what the
// webhook really exposes: two replicas' Metrics, driven through the calls the hooks make,
// are scraped every minute, and their /metrics text becomes promtool's input series. So a
// query over a metric or label the webhook does not export finds nothing and fails here.
import { expect } from 'chai';
import { requirePromtool, run } from '../../harness/promtool.js';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { SyncResponse } from '../../server/metacontroller.js';
import { Metrics } from '../../server/metrics.js';

const quickViewPath = fileURLToPath(new URL('../../deploy/monitoring/quick-view.yaml', import.meta.url));

interface RecordingRule {
  record: string;
  expr: string;
}

interface QuickView {
  spec: { groups: { name: string; rules: RecordingRule[] }[] };
}

/** The series a Prometheus scrape stores, keyed by promtool's series notation. */
type Scrape = Map<string, number>;

const labelPattern = /(\w+)="((?:[^"\\]|\\.)*)"/g;

/**
 * The webhook's own series in an exposition text, labelled as the ServiceMonitor's scrape
 * labels them: job and instance added, and (honorLabels) the metric's own namespace kept;
 * a series without one gets the target's namespace.
 */
function scrape(exposition: string, instance: string): Scrape {
  const series: Scrape = new Map();
  for (const line of exposition.split('\n')) {
    const sample = /^(dpu_credential_\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) continue;
    const [, name, labelText = '', value] = sample;
    const labels = new Map([...labelText.matchAll(labelPattern)].map(([, key, labelValue]) => [key!, labelValue!]));
    if (!labels.has('namespace')) labels.set('namespace', 'dpu-credential-webhook');
    labels.set('job', 'dpu-credential-webhook');
    labels.set('instance', instance);
    const notation = `${name}{${[...labels].map(([key, labelValue]) => `${key}="${labelValue}"`).join(',')}}`;
    series.set(notation, Number(value));
  }
  return series;
}

/** promtool's input_series: one value a minute, "_" where a scrape lacked the series. */
function inputSeries(scrapes: Scrape[]): { series: string; values: string }[] {
  const names = new Set(scrapes.flatMap((minute) => [...minute.keys()]));
  return [...names].map((series) => ({
    series,
    values: scrapes.map((minute) => (minute.has(series) ? String(minute.get(series)) : '_')).join(' '),
  }));
}

const minuteMs = 60_000;
const iso = (seconds: number) => new Date(seconds * 1_000).toISOString();
const tokenAnswer = (issuedAtSeconds: number, expiresAtSeconds: number): SyncResponse => ({
  status: { issuedAt: iso(issuedAtSeconds), expirationTimestamp: iso(expiresAtSeconds) },
  children: [],
  resyncAfterSeconds: 60,
});

describe('deploy/monitoring/quick-view.yaml (the "Is it healthy" queries of docs/operations.md)', function () {
  let rules: RecordingRule[];

  before(async function () {
    rules = (parse(await readFile(quickViewPath, 'utf8')) as QuickView).spec.groups.flatMap((group) => group.rules);
  });

  it('records three queries over the webhook\'s metrics', function () {
    expect(rules.map((rule) => rule.record)).to.deep.equal([
      'dpu_credential:hook_errors:rate5m',
      'dpu_credential:token_seconds_left:bottom10',
      'dpu_credential:kube_request_failures:rate5m',
    ]);
  });

  it('answers each query from two replicas\' real /metrics, scraped every minute for 10 minutes', async function () {
    this.timeout(60_000);
    await requirePromtool(this);
    // promtool's clock starts at the Unix epoch: the replicas' clocks do too, so the token
    // timestamps they export and PromQL's time() agree.
    let nowMs = 0;
    const replicas = { a: new Metrics({ now: () => nowMs }), b: new Metrics({ now: () => nowMs }) };
    const scrapes: Scrape[] = [];
    for (let minute = 0; minute <= 10; minute++) {
      nowMs = minute * minuteMs;
      // Replica a: default/r1 minted at minute 2 (1h token); default/r2's token (issued at 0,
      // expires at 15m) fails to renew, three times a minute; the host API server answers 503
      // three times a minute, and target clusters 404 and 409, which are expected answers.
      if (minute >= 2) {
        replicas.a.observeHook('sync', minute === 2 ? 'minted' : 'reused', 20);
        replicas.a.observeToken('default', 'r1', tokenAnswer(120, 120 + 3_600));
      }
      for (let call = 0; call < 3; call++) {
        replicas.a.observeHook('sync', 'error', 2_000, 'TokenRequestFailed');
        replicas.a.observeApiCall('host', 'GET', 503);
        replicas.a.observeApiCall('target', 'GET', 404);
        replicas.a.observeApiCall('target', 'POST', 409);
      }
      replicas.a.observeToken('default', 'r2', tokenAnswer(0, 900));
      replicas.a.observeApiCall('host', 'GET', 200);
      // Replica b: default/r1 until minute 1, with the older token that a replaced (expires
      // at 30m) and keeps exporting; tenant/r3 (a 2h token); six invalid specs a minute,
      // three malformed hook calls, and a target cluster it cannot reach, six calls a minute.
      if (minute <= 1) replicas.b.observeToken('default', 'r1', tokenAnswer(0, 1_800));
      replicas.b.observeToken('tenant', 'r3', tokenAnswer(0, 7_200));
      for (let call = 0; call < 6; call++) {
        replicas.b.observeHook('sync', 'invalid', 5, 'InvalidSpec');
        replicas.b.observeApiCall('target', 'POST', 0);
      }
      for (let call = 0; call < 3; call++) replicas.b.observeRejected('sync', 'bad_request');
      replicas.b.observeApiCall('target', 'GET', 200);
      scrapes.push(new Map([
        ...scrape(await replicas.a.exposition(), 'a'),
        ...scrape(await replicas.b.exposition(), 'b'),
      ]));
    }

    const work = await mkdtemp(join(tmpdir(), 'quick-view-'));
    try {
      // promtool reads plain rule files, not a PrometheusRule: the spec is the rule file.
      await writeFile(join(work, 'quick-view.rules.yaml'), stringify((parse(await readFile(quickViewPath, 'utf8')) as QuickView).spec));
      // At 10m each rate covers minutes 5 to 10: per-minute counts / 60.
      await writeFile(join(work, 'quick-view.test.yaml'), stringify({
        rule_files: ['quick-view.rules.yaml'],
        evaluation_interval: '1m',
        tests: [{
          interval: '1m',
          input_series: inputSeries(scrapes),
          promql_expr_test: [
            {
              expr: 'dpu_credential:hook_errors:rate5m',
              eval_time: '10m',
              exp_samples: [
                { labels: 'dpu_credential:hook_errors:rate5m{reason="TokenRequestFailed"}', value: 3 / 60 },
                { labels: 'dpu_credential:hook_errors:rate5m{reason="InvalidSpec"}', value: 6 / 60 },
                { labels: 'dpu_credential:hook_errors:rate5m{reason="BadRequest"}', value: 3 / 60 },
              ],
            },
            {
              // default/r1: a's newer token (expires 3720), not b's older one (1800).
              expr: 'dpu_credential:token_seconds_left:bottom10',
              eval_time: '10m',
              exp_samples: [
                { labels: 'dpu_credential:token_seconds_left:bottom10{namespace="default",name="r2"}', value: 900 - 600 },
                { labels: 'dpu_credential:token_seconds_left:bottom10{namespace="default",name="r1"}', value: 3_720 - 600 },
                { labels: 'dpu_credential:token_seconds_left:bottom10{namespace="tenant",name="r3"}', value: 7_200 - 600 },
              ],
            },
            {
              expr: 'dpu_credential:kube_request_failures:rate5m',
              eval_time: '10m',
              exp_samples: [
                { labels: 'dpu_credential:kube_request_failures:rate5m{cluster="host",code="503"}', value: 3 / 60 },
                { labels: 'dpu_credential:kube_request_failures:rate5m{cluster="target",code="0"}', value: 6 / 60 },
              ],
            },
          ],
        }],
      }));
      await run('promtool', ['check', 'rules', join(work, 'quick-view.rules.yaml')]);
      const { stdout } = await run('promtool', ['test', 'rules', join(work, 'quick-view.test.yaml')]).catch((error: { stdout?: string; stderr?: string }) => {
        throw new Error(`promtool test rules failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
      });
      expect(stdout).to.contain('SUCCESS');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
