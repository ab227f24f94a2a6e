// How the webhook reaches an API server: address, TLS material and bearer token, read from
// the host's kubeconfig or in-cluster configuration here, and from a DPUCluster's admin
// kubeconfig in kubeconfig.ts. It replaces @kubernetes/client-node's KubeConfig, of which
// the webhook used only this part: that package's index loads the whole generated API
// (about 40 MB of the idle process), and the webhook calls the API with its own client.
import { readFileSync, statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { clusterConnectionOf, type ClusterConnection } from './cluster-connection.js';
import { RotatingFile } from '../rotating-file.js';
import { parseUrl } from '../url.js';
import { InvalidKubeconfigError, currentEntries, parseKubeconfig } from './kubeconfig.js';
import { withoutTrailingSlashes } from './kubeconfig-text.js';

export type { ClusterConnection } from './cluster-connection.js';

/** Where the host connection came from: the in-cluster one describes the Pod's own cluster. */
export interface HostConnection {
  connection: ClusterConnection;
  inCluster: boolean;
}

export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** client-go re-reads a token file at most once a minute (cachingTokenSource); so does client-node. */
export const tokenFileMaxAgeMs = 60_000;

/**
 * A token read from `path` and read again once it is older than `maxAgeMs`: a projected
 * ServiceAccount token is rotated by the kubelet in place. The first read must succeed (a
 * missing token is a configuration error at start-up); a later failed read keeps the last
 * token, as client-go does: the kubelet replaces the file by renaming, and a token that has
 * really gone stale is refused by the server, which says so.
 */
export function fileToken(path: string, options: { now?: () => number; maxAgeMs?: number } = {}): (reread?: boolean) => string {
  const now = options.now ?? Date.now;
  const maxAgeMs = options.maxAgeMs ?? tokenFileMaxAgeMs;
  const file = new RotatingFile(path);
  // Not optional: the first read threw if the file was missing, and a failed re-read keeps the last content.
  const tokenIn = (content: Buffer | undefined) => content!.toString('utf8').trim();
  let token = tokenIn(file.current);
  let readAtMs = now();
  // reread: the server refused the token (401); the file may hold its successor already (the
  // kubelet rotates it in place), which is then sent at once rather than up to a minute later.
  return (reread = false) => {
    if (reread || now() - readAtMs >= maxAgeMs) {
      if (file.reread()) token = tokenIn(file.current);
      readAtMs = now();
    }
    return token;
  };
}

export interface HostEnvironment {
  env?: NodeJS.ProcessEnv;
  /** The home directory (~/.kube/config); the process's otherwise. */
  home?: string;
  /** Where the Pod's ServiceAccount token and CA are mounted. */
  serviceAccountDir?: string;
  now?: () => number;
}

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/**
 * The host cluster's connection, found in client-node's loadFromDefault order: the first
 * file of KUBECONFIG (a list is not merged: its other files are ignored), else
 * ~/.kube/config, else the in-cluster configuration. Unlike client-node, it does not fall
 * back to http://localhost:8080 when there is none of them: it fails.
 */
export function loadHostConnection(environment: HostEnvironment = {}): HostConnection {
  const env = environment.env ?? process.env;
  const now = environment.now ?? Date.now;
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  if (listed.length > 0) return { connection: loadKubeconfigFile(listed[0]!, now), inCluster: false };
  const home = environment.home ?? (env.HOME || homedir());
  const homeConfig = join(home, '.kube', 'config');
  if (home && isFile(homeConfig)) return { connection: loadKubeconfigFile(homeConfig, now), inCluster: false };
  const accountDir = environment.serviceAccountDir ?? serviceAccountDir;
  if (isFile(join(accountDir, 'token'))) return { connection: loadInCluster(env, accountDir, now), inCluster: true };
  throw new InvalidKubeconfigError('no host cluster configuration: KUBECONFIG is not set, there is no ~/.kube/config and no ServiceAccount token is mounted');
}

/** The Pod's own cluster: the kubernetes Service's address, the mounted CA and the mounted (rotating) token. */
export function loadInCluster(env: NodeJS.ProcessEnv, accountDir: string = serviceAccountDir, now: () => number = Date.now): ClusterConnection {
  const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = env;
  if (!host || !port) throw new InvalidKubeconfigError('a ServiceAccount token is mounted but KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set');
  return {
    // Always https (client-node uses http for ports 80, 8080 and 8001): the token is not sent in the clear.
    server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    caPem: readFileSync(join(accountDir, 'ca.crt'), 'utf8'),
    bearerToken: fileToken(join(accountDir, 'token'), { now }),
  };
}

const refusedHostUserFields: [string, string][] = [
  ['exec', 'exec credential plugins are not supported: use a token, a token-file or a client certificate'],
  ['auth-provider', 'auth providers are not supported: use a token, a token-file or a client certificate'],
  ['username', 'basic authentication is not supported (Kubernetes removed it in 1.19)'],
  ['password', 'basic authentication is not supported (Kubernetes removed it in 1.19)'],
];

/**
 * A kubeconfig file the operator gave the webhook for the host cluster. It is trusted, so
 * unlike a DPUCluster's it may name files (relative paths are relative to its folder, as
 * for kubectl); what the webhook cannot honour is refused rather than ignored.
 */
export function loadKubeconfigFile(path: string, now: () => number = Date.now): ClusterConnection {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidKubeconfigError(`cannot read the kubeconfig ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    return trustedKubeconfigConnection(text, dirname(resolve(path)), now);
  } catch (error) {
    if (error instanceof InvalidKubeconfigError) throw new InvalidKubeconfigError(`the kubeconfig ${path}: ${error.message}`);
    throw error;
  }
}

type Entry = Record<string, unknown>;

/** A path a trusted kubeconfig names, relative to its folder as for kubectl. */
function trustedPath(value: unknown, what: string, folder: string): string {
  if (typeof value !== 'string' || value === '') throw new InvalidKubeconfigError(`${what} is not a path`);
  return isAbsolute(value) ? value : join(folder, value);
}

const unreadable = (what: string, at: string, error: unknown) =>
  new InvalidKubeconfigError(`cannot read ${what} ${at}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);

/** The `${field}-data` field's content, else the file `field` names, else undefined. */
function trustedMaterial(entry: Entry, field: string, folder: string): string | undefined {
  const inline = entry[`${field}-data`];
  if (inline !== undefined) {
    if (typeof inline !== 'string') throw new InvalidKubeconfigError(`${field}-data is not base64`);
    return Buffer.from(inline, 'base64').toString('utf8');
  }
  if (entry[field] === undefined) return undefined;
  const at = trustedPath(entry[field], field, folder);
  try {
    return readFileSync(at, 'utf8');
  } catch (error) {
    throw unreadable(field, at, error);
  }
}

/** The user's token, else the token-file's (read again as it rotates), else undefined. */
function trustedBearerToken(user: Entry, folder: string, now: () => number): (() => string) | undefined {
  if (typeof user.token === 'string' && user.token !== '') {
    const token = user.token;
    return () => token;
  }
  const tokenFile = user['token-file'] ?? user.tokenFile;
  if (tokenFile === undefined) return undefined;
  const at = trustedPath(tokenFile, 'token-file', folder);
  try {
    return fileToken(at, { now });
  } catch (error) {
    throw unreadable('token-file', at, error);
  }
}

/** Refuses what the webhook cannot honour in a trusted kubeconfig: exec, auth-provider, basic auth, proxy-url. */
function refuseUnsupported(cluster: Entry, user: Entry): void {
  for (const [field, why] of refusedHostUserFields) {
    if (user[field] !== undefined) throw new InvalidKubeconfigError(`the user uses ${field}: ${why}`);
  }
  if (cluster['proxy-url'] !== undefined) throw new InvalidKubeconfigError('the cluster uses proxy-url: proxies are not supported');
}

/** The server of a trusted kubeconfig's cluster: an http(s) URL. */
function trustedServer(cluster: Entry): string {
  const server = typeof cluster.server === 'string' ? cluster.server : '';
  const url = parseUrl(server);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !url.hostname) {
    throw new InvalidKubeconfigError('the cluster\'s server is not an http(s) URL');
  }
  return withoutTrailingSlashes(server);
}

/**
 * The connection a trusted kubeconfig's current context describes (its files relative to
 * `folder`). The host's, and the tests' (harness/connection.ts): one reader for both.
 */
export function trustedKubeconfigConnection(text: string, folder: string, now: () => number = Date.now): ClusterConnection {
  const { cluster, user } = currentEntries(parseKubeconfig(text));
  refuseUnsupported(cluster, user);
  const server = trustedServer(cluster);
  const caPem = trustedMaterial(cluster, 'certificate-authority', folder);
  const clientCertPem = trustedMaterial(user, 'client-certificate', folder);
  const clientKeyPem = trustedMaterial(user, 'client-key', folder);
  if ((clientCertPem === undefined) !== (clientKeyPem === undefined)) throw new InvalidKubeconfigError('the user has a client certificate without its key, or a key without its certificate');
  return clusterConnectionOf(server, cluster, {
    caPem, clientCertPem, clientKeyPem, bearerToken: trustedBearerToken(user, folder, now),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
  });
}
