// The alert rules' own tests (deploy/monitoring/test/) run by promtool. Locally without
// promtool they are skipped; in CI, where .ci/run installs it, a missing promtool fails.
import { expect } from 'chai';
import { requirePromtool, run } from '../../harness/promtool.js';

describe('deploy/monitoring/prometheusrule.yaml', function () {
  it('passes its promtool unit tests (renewed and deleted requests do not fire; a failing renewal does)', async function () {
    this.timeout(60_000);
    await requirePromtool(this);
    const { stdout } = await run('bash', ['scripts/test-prometheus-rules.sh']);
    expect(stdout).to.contain('SUCCESS');
  });
});
