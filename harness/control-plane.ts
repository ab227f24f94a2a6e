// A real Kubernetes control plane (etcd + kube-apiserver) on loopback for tests
// and the demo: its own CA, service-account issuer and RBAC, so a freshly minted
// token has no rights until granted, exactly as in a real cluster.
import { KubeConfig } from '@kubernetes/client-node';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { envtestAssetsDir } from './assets.js';
import { freePort } from './net.js';
import { createControlPlanePki, type ControlPlanePki } from './pki.js';
import { logTail, startProcess, type ManagedProcess } from './processes.js';

export interface ControlPlaneOptions {
  /** Names the cluster in kubeconfigs and its service-account issuer. */
  name?: string;
  /** kube-apiserver --service-account-max-token-expiration, e.g. "1h". */
  maxTokenExpiration?: string;
  /** kube-apiserver --api-audiences; default: the issuer. */
  apiAudiences?: string[];
  /** More IP addresses in the serving certificate (it always has 127.0.0.1, ::1 and localhost). */
  extraIpSans?: string[];
}

const readyTimeoutMs = 90_000;
const pollIntervalMs = 100;

const live = new Set<ControlPlane>();

// A run that ends without stopping its control planes (an error, Ctrl-C) still removes
// their folders; their processes are killed by processes.ts.
process.once('exit', () => {
  for (const plane of live) plane.removeFolderNow();
});

/** Stops every control plane still running; the root hook calls it after all tests. */
export async function stopAllControlPlanes(): Promise<void> {
  await Promise.all([...live].map((plane) => plane.stop()));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function probe(url: string, pki?: ControlPlanePki): Promise<number> {
  return new Promise((resolve) => {
    const options = pki ? { ca: pki.caCertPem, cert: pki.adminCertPem, key: pki.adminKeyPem, timeout: 2_000 } : { timeout: 2_000 };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end();
  });
}

async function waitUntilHealthy(what: string, url: string, process: ManagedProcess, pki?: ControlPlanePki): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs;
  let exitCode: number | null | undefined;
  void process.exited.then((code) => (exitCode = code));
  while (Date.now() < deadline) {
    if (exitCode !== undefined) {
      throw new Error(`${what} exited with ${exitCode} before it was ready:\n${await logTail(process.logPath)}`);
    }
    if ((await probe(url, pki)) === 200) return;
    await sleep(pollIntervalMs);
  }
  throw new Error(`${what} not ready after ${readyTimeoutMs} ms:\n${await logTail(process.logPath)}`);
}

export class ControlPlane {
  private apiServer: ManagedProcess | undefined;
  private stopped = false;

  private constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly binDir: string,
    readonly pki: ControlPlanePki,
    private readonly etcd: ManagedProcess,
    readonly apiServerPort: number,
    private readonly apiServerArgs: string[],
  ) {}

  static async start(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
    // freePort() probes a port and lets it go; another listener may bind it before etcd or
    // kube-apiserver does. Fresh ports are the remedy, not a longer wait.
    for (let attempt = 1; ; attempt++) {
      try {
        return await ControlPlane.startOnce(options);
      } catch (error) {
        if (attempt === 3 || !String(error).includes('address already in use')) throw error;
      }
    }
  }

  private static async startOnce(options: ControlPlaneOptions): Promise<ControlPlane> {
    const name = options.name ?? 'cluster';
    const binDir = await envtestAssetsDir();
    const dir = await mkdtemp(join(tmpdir(), `controlplane-${name}-`));
    let etcd: ManagedProcess | undefined;
    try {
      const [pki, etcdClientPort, etcdPeerPort, apiServerPort] = await Promise.all([
        createControlPlanePki(dir, name, options.extraIpSans), freePort(), freePort(), freePort(),
      ]);
      const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
      const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
      etcd = await startProcess(join(binDir, 'etcd'), [
        '--name=default', `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // Test data is disposable: skipping fsync makes every write much faster.
        '--unsafe-no-fsync', '--log-level=warn',
      ], join(dir, 'etcd.log'));
      await waitUntilHealthy('etcd', `${etcdUrl}/health`, etcd);

      const issuer = `https://${name}.control-plane.test`;
      const apiServerArgs = [
        '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiServerPort}`,
        `--etcd-servers=${etcdUrl}`, `--cert-dir=${join(dir, 'certs')}`,
        `--tls-cert-file=${pki.servingCertPath}`, `--tls-private-key-file=${pki.servingKeyPath}`,
        `--client-ca-file=${pki.caCertPath}`,
        `--service-account-issuer=${issuer}`,
        `--service-account-key-file=${pki.serviceAccountPublicKeyPath}`,
        `--service-account-signing-key-file=${pki.serviceAccountPrivateKeyPath}`,
        `--api-audiences=${(options.apiAudiences ?? [issuer]).join(',')}`,
        '--authorization-mode=RBAC', '--service-cluster-ip-range=10.0.0.0/24', '--allow-privileged=true',
        '--profiling=false', '--v=1',
        ...(options.maxTokenExpiration ? [`--service-account-max-token-expiration=${options.maxTokenExpiration}`] : []),
      ];
      const plane = new ControlPlane(name, dir, binDir, pki, etcd, apiServerPort, apiServerArgs);
      live.add(plane);
      await plane.startApiServer();
      return plane;
    } catch (error) {
      for (const plane of live) if (plane.dir === dir) await plane.stop();
      await etcd?.stop();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The running processes' ids (the benchmark reads their CPU time). */
  get processIds(): { etcd: number; apiServer?: number } {
    return { etcd: this.etcd.pid, apiServer: this.apiServer?.pid };
  }

  get server(): string {
    return `https://127.0.0.1:${this.apiServerPort}`;
  }

  /** The admin's kubeconfig, the way kubeadm writes admin.conf: client certificate, embedded data. */
  adminKubeconfigYaml(): string {
    const b64 = (pem: string) => Buffer.from(pem).toString('base64');
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: this.name, cluster: { server: this.server, 'certificate-authority-data': b64(this.pki.caCertPem) } }],
      users: [{ name: `${this.name}-admin`, user: {
        'client-certificate-data': b64(this.pki.adminCertPem), 'client-key-data': b64(this.pki.adminKeyPem),
      } }],
      contexts: [{ name: `${this.name}-admin@${this.name}`, context: { cluster: this.name, user: `${this.name}-admin` } }],
      'current-context': `${this.name}-admin@${this.name}`,
    });
  }

  adminKubeConfig(): KubeConfig {
    const config = new KubeConfig();
    config.loadFromString(this.adminKubeconfigYaml());
    return config;
  }

  /** Writes the admin kubeconfig to a file in this control plane's folder (for kubectl or a webhook process). */
  async writeAdminKubeconfig(): Promise<string> {
    const path = join(this.dir, 'admin.kubeconfig');
    await writeFile(path, this.adminKubeconfigYaml(), { mode: 0o600 });
    return path;
  }

  get kubectlPath(): string {
    return join(this.binDir, 'kubectl');
  }

  async startApiServer(): Promise<void> {
    if (this.apiServer) return;
    this.apiServer = await startProcess(join(this.binDir, 'kube-apiserver'), this.apiServerArgs, join(this.dir, 'kube-apiserver.log'));
    await waitUntilHealthy(`kube-apiserver of ${this.name}`, `${this.server}/readyz`, this.apiServer, this.pki);
    // The bootstrap controller creates the default namespace shortly after /readyz turns green.
    await waitUntilHealthy(`namespace default in ${this.name}`, `${this.server}/api/v1/namespaces/default`, this.apiServer, this.pki);
  }

  /** Stops only the API server; etcd and its data stay, so startApiServer() brings the same cluster back. */
  async stopApiServer(): Promise<void> {
    const apiServer = this.apiServer;
    this.apiServer = undefined;
    await apiServer?.stop();
  }

  removeFolderNow(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    live.delete(this);
    await this.stopApiServer();
    await this.etcd.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

export const startControlPlane = (options?: ControlPlaneOptions) => ControlPlane.start(options);
