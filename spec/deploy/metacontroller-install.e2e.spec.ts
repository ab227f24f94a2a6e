// install/metacontroller/: the patch over Metacontroller's production manifests, rendered by
// kubectl kustomize against a StatefulSet shaped like upstream's (v4.17.2: one container
// "metacontroller" with an args list; the remote base itself cannot be fetched here), and the
// Helm values, which must repeat the chart's default args since a list replaces the chart's.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { envtestAssetsDir } from '../../harness/assets.js';

const run = promisify(execFile);
const installDir = fileURLToPath(new URL('../../install/metacontroller/', import.meta.url));
const upstreamArgs = ['--zap-log-level=4', '--discovery-interval=20s'];
const chartDefaultArgs = ['--zap-log-level=4', '--discovery-interval=20s', '--cache-flush-interval=30m', '--health-probe-bind-address=:8081'];
const ours = ['--apply-strategy=server-side-apply', '--client-go-qps=100', '--client-go-burst=200', '--workers=16'];

describe('install/metacontroller/ (Metacontroller set up as the webhook needs it)', function () {
  it('appends server-side apply and the fleet settings to the args of upstream\'s StatefulSet, v4.17.2 or newer', async function () {
    this.timeout(60_000);
    const shipped = parse(await readFile(join(installDir, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect(shipped.resources).to.deep.equal(['https://github.com/metacontroller/metacontroller//manifests/production?ref=v4.17.2']);
    const dir = await mkdtemp(join(tmpdir(), 'metacontroller-install-'));
    try {
      await writeFile(join(dir, 'statefulset.yaml'), stringify({
        apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'metacontroller', namespace: 'metacontroller' },
        spec: { template: { spec: { containers: [{ name: 'metacontroller', image: 'ghcr.io/metacontroller/metacontroller:v4.17.2', args: upstreamArgs }] } } },
      }));
      await writeFile(join(dir, 'kustomization.yaml'), stringify({ ...shipped, resources: ['statefulset.yaml'] }));
      const { stdout } = await run(join(await envtestAssetsDir(), 'kubectl'), ['kustomize', dir]);
      const [statefulSet] = parseAllDocuments(stdout).map((document) => document.toJS() as {
        spec: { template: { spec: { containers: { args: string[] }[] } } };
      });
      expect(statefulSet?.spec.template.spec.containers[0]?.args).to.deep.equal([...upstreamArgs, ...ours]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives the Helm chart the same settings, after the chart\'s own default args', async function () {
    const values = parse(await readFile(join(installDir, 'values.yaml'), 'utf8')) as { commandArgs: string[] };
    expect(values.commandArgs).to.deep.equal([...chartDefaultArgs, ...ours]);
  });
});
