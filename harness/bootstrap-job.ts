// The chart's bootstrap Job (templates/bootstrap/job.yaml) run on a test control plane, which
// has no Job controller and no kubelet: this stands in for both. Each Job it finds that has not
// finished is run once: its container's command (node dist/server/bootstrap.js, here its source
// server/bootstrap.ts) with the Job's own environment, authenticated as the Job's ServiceAccount
// by a token minted for it (so the Role the chart gives it is what the test exercises); then the
// Job's status is written as the Job controller writes it (Complete, or Failed), which is what
// helm waits for before it goes on with an install or upgrade.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceAccountDir } from '../server/kube/connection.js';
import { KubeRestClient } from '../server/kube/rest.js';
import type { ControlPlane } from './control-plane.js';
import { connectionOf } from './connection.js';
import { readableAsVolume, runContainer, writeServiceAccountFolder } from './image.js';
import { tokenKubeConfig, whoAmI } from './kube-helpers.js';
import { logTail, startProcess } from './processes.js';

const bootstrapSource = fileURLToPath(new URL('../server/bootstrap.ts', import.meta.url));
/** What the image runs (its entrypoint is node): the Job must ask for exactly this. */
export const imageArgs = ['--enable-source-maps', 'dist/server/bootstrap.js'];

interface Job {
  metadata: { name: string; namespace: string; uid: string; creationTimestamp?: string };
  spec: { template: { spec: {
    serviceAccountName?: string;
    securityContext?: { runAsUser?: number; runAsGroup?: number };
    containers: { name: string; args?: string[]; command?: string[]; env?: { name: string; value?: string; valueFrom?: unknown }[] }[];
  } } };
  status?: { conditions?: { type: string; status: string }[] };
}

/** One run of a Job's container: its env, the token minted for its ServiceAccount, where its files go. */
interface JobRun {
  env: Record<string, string>;
  token: string;
  files: string;
  log: string;
}

export interface BootstrapRun {
  job: string;
  user: string;
  exitCode: number | null;
  log: string;
}

const finished = (job: Job) => (job.status?.conditions ?? []).some((condition) => ['Complete', 'Failed'].includes(condition.type) && condition.status === 'True');

export class BootstrapJobRunner {
  /** Every run, in order: which Job, as whom, how it ended. */
  readonly runs: BootstrapRun[] = [];
  private readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  private constructor(private readonly plane: ControlPlane, private readonly admin: KubeRestClient, private readonly namespace: string,
    private readonly dir: string, private readonly image: string | undefined) {}

  /**
   * Runs the Jobs of `namespace` as they appear (polled every 200 ms: helm waits for its hook
   * Job) until stop(); with `poll: false`, only when the test calls runPending(). With `image`,
   * each Job's container runs in that image with podman (harness/image.ts) as the kubelet runs
   * it: the API server reached in-cluster with the ServiceAccount folder mounted; otherwise its
   * source runs as a process.
   */
  static async start(plane: ControlPlane, namespace: string, dir: string, options: { poll?: boolean; image?: string } = {}): Promise<BootstrapJobRunner> {
    const runner = new BootstrapJobRunner(plane, new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 }),
      namespace, dir, options.image);
    if (options.poll ?? true) runner.schedule();
    return runner;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.polling = this.runPending().then(() => undefined, (error: Error) => {
        this.failure ??= error;
      }).finally(() => {
        if (this.timer) this.schedule();
      });
    }, 200);
  }

  /** Runs every Job not finished and not run yet, now; what they did is in `runs`. */
  async runPending(): Promise<BootstrapRun[]> {
    const jobs = await this.admin.request<{ items: Job[] }>('GET', `/apis/batch/v1/namespaces/${encodeURIComponent(this.namespace)}/jobs`);
    const ran: BootstrapRun[] = [];
    for (const job of jobs.items) {
      if (finished(job) || this.seen.has(job.metadata.uid)) continue;
      this.seen.add(job.metadata.uid);
      const run = await this.run(job);
      this.runs.push(run);
      ran.push(run);
    }
    return ran;
  }

  async stop(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    clearTimeout(timer);
    await this.polling;
    this.admin.close();
    if (this.failure) throw this.failure;
  }

  private async run(job: Job): Promise<BootstrapRun> {
    const pod = job.spec.template.spec;
    const [container, ...others] = pod.containers;
    if (!container || others.length > 0) throw new Error(`Job ${job.metadata.name}: the runner runs one container`);
    if (container.command || JSON.stringify(container.args) !== JSON.stringify(imageArgs)) {
      throw new Error(`Job ${job.metadata.name} runs ${JSON.stringify(container.command ?? container.args)}, not the image's ${JSON.stringify(imageArgs)}`);
    }
    const env: Record<string, string> = {};
    for (const entry of container.env ?? []) {
      if (entry.value === undefined) throw new Error(`Job ${job.metadata.name}: env ${entry.name} is not a plain value; the runner knows no valueFrom`);
      env[entry.name] = entry.value;
    }
    const account = pod.serviceAccountName ?? 'default';
    const { namespace, name } = job.metadata;
    const minted = await this.admin.request<{ status: { token: string } }>('POST',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(account)}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
    const token = minted.status.token;
    const user = await whoAmI(tokenKubeConfig(this.plane.server, this.plane.pki.caCertPem, token));
    const files = join(this.dir, `${name}-${job.metadata.uid}`);
    const log = `${files}.log`;
    const startedAt = new Date();
    const exitCode = this.image
      ? await this.runInImage(this.image, job, { env, token, files, log })
      : await this.runFromSource({ env, token, files, log });
    await this.writeStatus(job, exitCode === 0, startedAt);
    return { job: name, user, exitCode, log: await logTail(log, 50) };
  }

  private async runFromSource(run: JobRun): Promise<number | null> {
    const kubeconfig = `${run.files}.kubeconfig`;
    await writeFile(kubeconfig, tokenKubeConfig(this.plane.server, this.plane.pki.caCertPem, run.token).exportConfig(), { mode: 0o600 });
    // Only the Job's environment (and what node needs to start): nothing of the test's leaks in.
    const child = await startProcess(process.execPath, ['--enable-source-maps', '--import', 'tsx', bootstrapSource], run.log,
      { PATH: process.env.PATH ?? '', HOME: this.dir, KUBECONFIG: kubeconfig, ...run.env });
    return await child.exited;
  }

  private async runInImage(image: string, job: Job, run: JobRun): Promise<number | null> {
    const serviceAccountFolder = await writeServiceAccountFolder(`${run.files}-serviceaccount`,
      { token: run.token, caPem: this.plane.pki.caCertPem, namespace: job.metadata.namespace });
    await readableAsVolume(serviceAccountFolder);
    const { runAsUser = 65532, runAsGroup = runAsUser } = job.spec.template.spec.securityContext ?? {};
    const container = await runContainer({
      image, args: imageArgs, user: `${runAsUser}:${runAsGroup}`, readOnlyRootFilesystem: true, logPath: run.log,
      env: { ...run.env, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.plane.apiServerPort) },
      mounts: { [serviceAccountFolder]: serviceAccountDir },
    });
    try {
      return await container.exited;
    } finally {
      await container.remove();
    }
  }

  /** The status the Job controller writes when its Pod ended (batch/v1 validation wants all of these). */
  private async writeStatus(job: Job, succeeded: boolean, startedAt: Date): Promise<void> {
    const now = new Date();
    const at = (type: string, reason: string) => ({ type, status: 'True', reason, message: reason, lastProbeTime: now.toISOString(), lastTransitionTime: now.toISOString() });
    const status = succeeded
      ? { startTime: startedAt.toISOString(), completionTime: now.toISOString(), succeeded: 1, active: 0, ready: 0, terminating: 0,
        uncountedTerminatedPods: {}, conditions: [at('SuccessCriteriaMet', 'CompletionsReached'), at('Complete', 'CompletionsReached')] }
      : { startTime: startedAt.toISOString(), failed: 1, active: 0, ready: 0, terminating: 0,
        uncountedTerminatedPods: {}, conditions: [at('FailureTarget', 'BackoffLimitExceeded'), at('Failed', 'BackoffLimitExceeded')] };
    const path = `/apis/batch/v1/namespaces/${encodeURIComponent(job.metadata.namespace)}/jobs/${encodeURIComponent(job.metadata.name)}/status`;
    const current = await this.admin.request<Job & { status?: object }>('GET', path);
    await this.admin.request('PUT', path, { ...current, status: { ...current.status, ...status } });
  }
}
