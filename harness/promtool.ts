// promtool (Debian's prometheus package, installed by .ci/run) runs the monitoring tests.
// Locally without it they are skipped; in CI a missing promtool fails them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';

export const run = promisify(execFile);

export async function requirePromtool(context: Mocha.Context): Promise<void> {
  try {
    await run('promtool', ['--version']);
  } catch {
    if (process.env.CI) expect.fail('promtool is missing: apt-get install -y --no-install-recommends prometheus');
    context.skip();
  }
}
