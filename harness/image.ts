// The container image as the Deployment runs it: built from the Dockerfile by
// scripts/image.sh (buildah, local stand-ins for the base images), run with podman on the
// host network with what the Deployment in deploy/deployment.yaml gives its container: the
// env, the Secret volumes at their mount paths, the user, a read-only root filesystem, no
// capabilities, and the API server reached as in-cluster (KUBERNETES_SERVICE_HOST/PORT and
// the mounted ServiceAccount folder).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { serviceAccountDir } from '../server/kube/connection.js';
import { startProcess, type ManagedProcess } from './processes.js';

const run = promisify(execFile);

/**
 * scripts/image.sh builds into a container store of its own (its storage.conf), so that its
 * stand-ins never take the real base images' names in the machine's store: every podman call
 * here reads the same store.
 */
process.env.CONTAINERS_STORAGE_CONF ??= join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dpu-credential-webhook/image/storage.conf');
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const deploymentPath = fileURLToPath(new URL('../deploy/deployment.yaml', import.meta.url));

/** What scripts/image.sh and the container runs need; empty when all are on PATH. */
export async function missingImageTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of ['podman', 'buildah']) {
    await run('sh', ['-c', `command -v ${tool}`]).catch(() => missing.push(tool));
  }
  return missing;
}

/**
 * The image built from this tree (scripts/image.sh: reused when one built from the same
 * inputs exists, otherwise built, minutes the first time). Its output goes to `logPath`.
 */
export async function buildImage(logPath: string): Promise<string> {
  const log = openSync(logPath, 'a');
  const child = spawn('bash', [join(repoRoot, 'scripts/image.sh')], { cwd: repoRoot, stdio: ['ignore', 'pipe', log] });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve)).finally(() => closeSync(log));
  if (code !== 0) throw new Error(`scripts/image.sh failed (exit ${code}); its log: ${logPath}`);
  const image = stdout.trim().split('\n').at(-1) ?? '';
  if (!image.includes(':')) throw new Error(`scripts/image.sh printed no image name; its log: ${logPath}`);
  return image;
}

export interface ImageSummary {
  /** Bytes, as podman reports the image's size. */
  size: number;
  entrypoint: string[];
  cmd: string[];
  user: string;
  /** Every path in the image's filesystem, without a leading slash. */
  files: string[];
}

/** The image's config and filesystem listing (podman create, export, tar -t: nothing runs). */
export async function inspectImage(image: string): Promise<ImageSummary> {
  const { stdout } = await run('podman', ['image', 'inspect', '--format', '{{json .Size}}\t{{json .Config.Entrypoint}}\t{{json .Config.Cmd}}\t{{json .Config.User}}', image]);
  const [size, entrypoint, cmd, user] = stdout.trim().split('\t').map((field) => JSON.parse(field) as unknown);
  const name = `dcw-listing-${randomBytes(4).toString('hex')}`;
  // To a file: podman export cannot write into a pipe it did not open itself.
  const dir = await mkdtemp(join(tmpdir(), 'image-listing-'));
  await run('podman', ['create', '--name', name, image]);
  try {
    await run('podman', ['export', '--output', join(dir, 'rootfs.tar'), name]);
    const { stdout: listing } = await run('tar', ['-tf', join(dir, 'rootfs.tar')], { maxBuffer: 256 * 1024 * 1024 });
    const files = listing.split('\n').map((path) => path.replace(/^\.?\//, '').replace(/\/$/, '')).filter(Boolean);
    return { size: size as number, entrypoint: (entrypoint ?? []) as string[], cmd: (cmd ?? []) as string[], user: user as string, files };
  } finally {
    await run('podman', ['rm', '--force', name]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The webhook's container and pod spec as deploy/deployment.yaml (rendered from the chart) gives them. */
export interface DeploymentContainer {
  env: Record<string, string>;
  /** Volume name to mount path. */
  mounts: Record<string, string>;
  runAsUser: number;
  runAsGroup: number;
  readOnlyRootFilesystem: boolean;
  terminationGracePeriodSeconds: number;
  readinessPath: string;
  livenessPath: string;
}

interface DeploymentManifest {
  kind: string;
  spec: { template: { spec: {
    terminationGracePeriodSeconds: number;
    securityContext: { runAsUser: number; runAsGroup: number };
    containers: {
      env: { name: string; value: string }[];
      volumeMounts: { name: string; mountPath: string }[];
      securityContext: { readOnlyRootFilesystem: boolean };
      readinessProbe: { httpGet: { path: string } };
      livenessProbe: { httpGet: { path: string } };
    }[];
  } } };
}

export async function readDeploymentContainer(): Promise<DeploymentContainer> {
  const documents = parseAllDocuments(await readFile(deploymentPath, 'utf8')).map((document) => document.toJS() as DeploymentManifest);
  const deployment = documents.find((document) => document.kind === 'Deployment');
  if (!deployment) throw new Error(`${deploymentPath} holds no Deployment`);
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0]!;
  return {
    env: Object.fromEntries(container.env.map(({ name, value }) => [name, value])),
    mounts: Object.fromEntries(container.volumeMounts.map(({ name, mountPath }) => [name, mountPath])),
    runAsUser: pod.securityContext.runAsUser,
    runAsGroup: pod.securityContext.runAsGroup,
    readOnlyRootFilesystem: container.securityContext.readOnlyRootFilesystem,
    terminationGracePeriodSeconds: pod.terminationGracePeriodSeconds,
    readinessPath: container.readinessProbe.httpGet.path,
    livenessPath: container.livenessProbe.httpGet.path,
  };
}

/**
 * Makes a host folder readable to the container's user as the kubelet makes a Secret or
 * projected volume (files 0644, defaultMode 420; folders 0755): the test's folders are
 * root's and 0700 (mkdtemp), its Secret files 0600 (harness/secret-volume.ts).
 */
export async function readableAsVolume(dir: string): Promise<void> {
  await run('chmod', ['-R', 'a+rX', dir]);
}

/** The ServiceAccount folder the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount. */
export async function writeServiceAccountFolder(dir: string, account: { token: string; caPem: string; namespace: string }): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'token'), account.token);
  await writeFile(join(dir, 'ca.crt'), account.caPem);
  await writeFile(join(dir, 'namespace'), account.namespace);
  await chmod(dir, 0o755);
  return dir;
}

/**
 * runc and ulimits below every usual hard limit, as scripts/image.sh builds with (it says
 * why: Debian's crun refuses hybrid cgroups, and podman's default nofile needs
 * CAP_SYS_RESOURCE, which a sandboxed root may lack).
 */
const containerRuntimeOptions = ['--runtime', 'runc'];
const containerUlimits = ['--ulimit', 'nofile=16384:16384', '--ulimit', 'nproc=16384:16384'];

// Containers outlive the podman client that started them (conmon keeps them): whatever a
// run leaves is removed when it ends, as harness/processes.ts kills its processes.
const runningContainers = new Set<string>();
process.once('exit', () => {
  for (const name of runningContainers) spawnSync('podman', ['rm', '--force', '--time', '0', name], { stdio: 'ignore' });
});

export interface ContainerOptions {
  image: string;
  /** After the image's ENTRYPOINT (/nodejs/bin/node); none: the image's CMD. */
  args?: string[];
  env: Record<string, string>;
  /** Host folder to container path, mounted read-only. */
  mounts: Record<string, string>;
  user: string;
  readOnlyRootFilesystem: boolean;
  /** The container's output (its log). */
  logPath: string;
}

export interface RunningContainer {
  readonly name: string;
  readonly logPath: string;
  /** The container's exit code (podman run's), once it has ended. */
  readonly exited: Promise<number | null>;
  /**
   * `podman stop --time graceSeconds`, as the kubelet stops a container: SIGTERM, then
   * SIGKILL once the grace period is over. Resolves when podman has stopped it.
   */
  stop(graceSeconds: number): Promise<void>;
  /** Gone whatever its state (the test's cleanup). */
  remove(): Promise<void>;
}

/**
 * The image run with podman as a Pod's container: host network (the test's API servers and
 * the driver are on loopback), the user, a read-only root filesystem without podman's tmpfs
 * folders (Kubernetes adds none), all capabilities dropped and no privilege escalation (the
 * Deployment's securityContext), the folders mounted read-only.
 */
export async function runContainer(options: ContainerOptions): Promise<RunningContainer> {
  const name = `dcw-e2e-${randomBytes(4).toString('hex')}`;
  const args = [
    ...containerRuntimeOptions, 'run', '--name', name, '--network', 'host', '--user', options.user, '--cap-drop', 'all', '--security-opt', 'no-new-privileges',
    '--pull', 'never', '--sig-proxy=false', ...containerUlimits,
    ...(options.readOnlyRootFilesystem ? ['--read-only', '--read-only-tmpfs=false'] : []),
    ...Object.entries(options.mounts).flatMap(([source, target]) => ['--volume', `${source}:${target}:ro`]),
    ...Object.entries(options.env).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
    options.image, ...(options.args ?? []),
  ];
  const podman: ManagedProcess = await startProcess('podman', args, options.logPath);
  runningContainers.add(name);
  const remove = async () => {
    await run('podman', ['rm', '--force', '--time', '0', name]).catch(() => undefined);
    runningContainers.delete(name);
    await podman.stop();
  };
  return {
    name,
    logPath: options.logPath,
    exited: podman.exited,
    async stop(graceSeconds: number) {
      await run('podman', ['stop', '--time', String(graceSeconds), name]);
    },
    remove,
  };
}

export interface WebhookContainerOptions {
  image: string;
  /** The Deployment's container (readDeploymentContainer()). */
  deployment: DeploymentContainer;
  /** Host folders for the Deployment's volumes, by volume name (hook-token, tls). */
  volumes: Record<string, string>;
  /** The host API server as the Pod sees it: the kubernetes Service's address and the ServiceAccount folder. */
  inCluster: { host: string; port: number; serviceAccountFolder: string };
  /** Over the Deployment's env (the ports: the host network is shared with other tests). */
  env?: Record<string, string>;
  args?: string[];
  logPath: string;
}

/** The webhook's container as the Deployment runs it (see runContainer). */
export async function runWebhookContainer(options: WebhookContainerOptions): Promise<RunningContainer> {
  const { deployment } = options;
  const mounts: Record<string, string> = { [options.inCluster.serviceAccountFolder]: serviceAccountDir };
  for (const [volume, mountPath] of Object.entries(deployment.mounts)) {
    const source = options.volumes[volume];
    if (!source) throw new Error(`the Deployment mounts volume ${volume}: give the test a folder for it`);
    mounts[source] = mountPath;
  }
  return await runContainer({
    image: options.image,
    ...(options.args ? { args: options.args } : {}),
    env: {
      ...deployment.env,
      KUBERNETES_SERVICE_HOST: options.inCluster.host, KUBERNETES_SERVICE_PORT: String(options.inCluster.port),
      ...options.env,
    },
    mounts,
    user: `${deployment.runAsUser}:${deployment.runAsGroup}`,
    readOnlyRootFilesystem: deployment.readOnlyRootFilesystem,
    logPath: options.logPath,
  });
}
