// The alert rules' own tests (deploy/monitoring/test/) run by promtool. Locally without
// promtool they are skipped; in CI, where .ci/run installs it, a missing promtool fails.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);

async function hasPromtool(): Promise<boolean> {
  try {
    await run('promtool', ['--version']);
    return true;
  } catch {
    return false;
  }
}

describe('deploy/monitoring/prometheusrule.yaml', function () {
  it('passes its promtool unit tests (renewed and deleted requests do not fire; a failing renewal does)', async function () {
    this.timeout(60_000);
    if (!(await hasPromtool())) {
      if (process.env.CI) expect.fail('promtool is missing: apt-get install -y --no-install-recommends prometheus');
      this.skip();
    }
    const { stdout } = await run('bash', ['scripts/test-prometheus-rules.sh']);
    expect(stdout).to.contain('SUCCESS');
  });
});
