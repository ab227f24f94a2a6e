// One version for the package, the Helm chart (version and appVersion), the image the manifests run and
// the newest CHANGELOG entry.
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const read = (path: string) => readFile(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');

describe('release versions', function () {
  it('agree between package.json, package-lock.json, the chart\'s version and appVersion, the Deployment\'s image, and the newest CHANGELOG release', async function () {
    const { version } = JSON.parse(await read('package.json')) as { version: string };
    const lock = JSON.parse(await read('package-lock.json')) as { version: string; packages: Record<string, { version?: string }> };
    expect([lock.version, lock.packages['']?.version]).to.deep.equal([version, version]);
    const chart = parse(await read('chart/dpu-credential-webhook/Chart.yaml')) as { version: string; appVersion: string };
    expect([chart.version, chart.appVersion]).to.deep.equal([version, version]);
    const deployment = parse(await read('deploy/deployment.yaml')) as { spec: { template: { spec: { containers: { image: string }[] } } } };
    expect(deployment.spec.template.spec.containers[0]?.image).to.equal(`dpu-credential-webhook:${version}`);
    const newest = /^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$/m.exec(await read('CHANGELOG.md'));
    expect(newest?.[1]).to.equal(version);
  });
});
