// The webhook process refuses to serve its hooks open (no TLS, no hook authentication)
// unless ALLOW_INSECURE_HOOKS=true says so, and then warns at start. No control plane: the
// refusal comes before any cluster is read, and the host kubeconfig of the second case
// points at a closed port.
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../harness/net.js';
import { startProcess } from '../../harness/processes.js';
import { eventually } from '../../harness/eventually.js';

const mainPath = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const closedHostKubeconfig = `apiVersion: v1
kind: Config
clusters: [{ name: closed, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]
users: [{ name: nobody, user: { token: unused } }]
contexts: [{ name: closed, context: { cluster: closed, user: nobody } }]
current-context: closed
`;

describe('the webhook process without TLS and hook authentication', function () {
  this.timeout(30_000);
  let dir: string;
  let kubeconfig: string;
  // The parent's environment, without any setting that would make the hooks secure.
  const baseEnv = () => {
    const env = { ...process.env };
    for (const name of ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CLIENT_CA_FILE', 'HOOK_BEARER_TOKEN_FILE', 'ALLOW_INSECURE_HOOKS']) delete env[name];
    return env;
  };

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'insecure-start-'));
    kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, closedHostKubeconfig);
  });

  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  it('exits non-zero, saying what to set, when neither is configured', async function () {
    const logPath = join(dir, 'refused.log');
    const webhook = await startProcess(process.execPath, ['--import', 'tsx', mainPath], logPath,
      { ...baseEnv(), KUBECONFIG: kubeconfig, PORT: String(await freePort()), METRICS_PORT: String(await freePort()) });
    expect(await webhook.exited).to.not.equal(0);
    const log = await readFile(logPath, 'utf8');
    expect(log).to.contain('TLS_CERT_FILE').and.contain('HOOK_BEARER_TOKEN_FILE').and.contain('set ALLOW_INSECURE_HOOKS=true');
  });

  it('serves plain HTTP with ALLOW_INSECURE_HOOKS=true, and says loudly at start that it is insecure', async function () {
    const logPath = join(dir, 'allowed.log');
    const port = await freePort();
    const webhook = await startProcess(process.execPath, ['--import', 'tsx', mainPath], logPath,
      { ...baseEnv(), KUBECONFIG: kubeconfig, PORT: String(port), METRICS_PORT: String(await freePort()), ALLOW_INSECURE_HOOKS: 'true' });
    try {
      const healthz = () => fetch(`http://127.0.0.1:${port}/healthz`).then((res) => res.status, () => 0);
      await eventually(async () => await healthz() === 200, 'the webhook answers /healthz', { timeoutMs: 20_000, intervalMs: 100 });
      expect(await healthz()).to.equal(200);
      const warning = (await readFile(logPath, 'utf8')).split('\n').find((line) => line.includes('INSECURE'));
      expect(warning, 'a warning line at start').to.be.a('string');
      expect(JSON.parse(warning!)).to.include({ level: 'warn' });
      expect(warning).to.contain('no TLS').and.contain('no hook authentication');
    } finally {
      await webhook.stop();
    }
  });
});
