// Reads a DPUCluster's admin kubeconfig (from a Secret in the host cluster) into the
// endpoint written to outputs and the connection to call the cluster with.
//
// The text is untrusted: whoever can write that Secret controls it. Only inline data is
// accepted. A kubeconfig may otherwise make its reader run a command (exec, auth-provider
// cmd-path), read local files (token-file, certificate paths: the webhook's own
// ServiceAccount token among them) or skip TLS verification, and so hand the webhook's
// credentials to another server.
import { parse } from 'yaml';
import { isRecord } from '../api.js';
import type { ClusterEndpoint } from '../credential/render.js';
import type { ClusterConnection } from './cluster-connection.js';
import { isWrappedBase64, withoutTrailingSlashes } from './kubeconfig-text.js';

export class InvalidKubeconfigError extends Error {
  override name = 'InvalidKubeconfigError';
}

export interface LoadedKubeconfig {
  connection: ClusterConnection;
  endpoint: ClusterEndpoint;
}

type Entry = Record<string, unknown>;

const pemCertificate = /^\s*-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/;
const refusedClusterFields = ['certificate-authority', 'insecure-skip-tls-verify', 'proxy-url'];
const refusedUserFields = ['exec', 'auth-provider', 'token-file', 'tokenFile', 'client-certificate', 'client-key', 'username', 'password'];


function named(list: unknown, what: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  if (list === undefined || list === null) return entries;
  if (!Array.isArray(list)) throw new InvalidKubeconfigError(`${what} must be a list`);
  for (const item of list) {
    if (!isRecord(item) || typeof item.name !== 'string' || !isRecord(item[what.slice(0, -1)])) {
      throw new InvalidKubeconfigError(`every entry of ${what} needs a name and a ${what.slice(0, -1)}`);
    }
    entries.set(item.name, item[what.slice(0, -1)] as Entry);
  }
  return entries;
}

function pick(clusters: Map<string, Entry>, users: Map<string, Entry>, contexts: Map<string, Entry>, current: unknown) {
  if (typeof current === 'string' && current !== '') {
    const context = contexts.get(current);
    if (!context) throw new InvalidKubeconfigError(`the current context "${current}" is not defined`);
    const clusterName = String(context.cluster ?? '');
    const userName = String(context.user ?? '');
    const cluster = clusters.get(clusterName);
    const user = users.get(userName);
    if (!cluster) throw new InvalidKubeconfigError(`the current context names no known cluster ("${clusterName}")`);
    if (!user) throw new InvalidKubeconfigError(`the current context names no known user ("${userName}")`);
    return { clusterName, cluster, userName, user };
  }
  if (clusters.size !== 1 || users.size !== 1) {
    throw new InvalidKubeconfigError(`no current context, and ${clusters.size} clusters and ${users.size} users: cannot tell which to use`);
  }
  const [clusterName, cluster] = [...clusters][0]!;
  const [userName, user] = [...users][0]!;
  return { clusterName, cluster, userName, user };
}

function checkServer(server: unknown): string {
  if (typeof server !== 'string' || server === '') throw new InvalidKubeconfigError('the cluster has no server');
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new InvalidKubeconfigError(`the cluster's server "${server.slice(0, 100)}" is not a URL`);
  }
  if (url.protocol !== 'https:' || !url.hostname) throw new InvalidKubeconfigError(`the cluster's server "${server.slice(0, 100)}" is not an https URL`);
  return withoutTrailingSlashes(server);
}

function decodeInline(value: unknown, what: string): string {
  if (typeof value !== 'string' || !isWrappedBase64(value)) throw new InvalidKubeconfigError(`${what} is not base64`);
  return Buffer.from(value, 'base64').toString('utf8');
}

/**
 * The current context's cluster and user (the only ones, when there is no current context):
 * shared with the host kubeconfig's loader (connection.ts), which applies its own rules to them.
 */
export function currentEntries(document: Record<string, unknown>): { clusterName: string; cluster: Entry; userName: string; user: Entry } {
  return pick(named(document.clusters, 'clusters'), named(document.users, 'users'), named(document.contexts, 'contexts'), document['current-context']);
}

/** The kubeconfig's document, a map, or InvalidKubeconfigError saying why not. */
export function parseKubeconfig(text: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new InvalidKubeconfigError(`not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isRecord(document)) throw new InvalidKubeconfigError('not a kubeconfig: the document is not a map');
  return document;
}

export function loadKubeconfig(text: string): LoadedKubeconfig {
  const document = parseKubeconfig(text);
  const { clusterName, cluster, user } = currentEntries(document);

  for (const field of refusedClusterFields) {
    if (cluster[field] !== undefined && cluster[field] !== false) {
      throw new InvalidKubeconfigError(`the cluster uses ${field}: only an inline certificate-authority-data is accepted`);
    }
  }
  for (const field of refusedUserFields) {
    if (user[field] !== undefined) {
      throw new InvalidKubeconfigError(`the user uses ${field}: only an inline token or client-certificate-data/client-key-data are accepted`);
    }
  }
  const server = checkServer(cluster.server);
  if (cluster['certificate-authority-data'] === undefined) throw new InvalidKubeconfigError('the cluster has no certificate-authority-data');
  const caPem = decodeInline(cluster['certificate-authority-data'], 'certificate-authority-data');
  if (!pemCertificate.test(caPem)) throw new InvalidKubeconfigError('the cluster\'s certificate-authority-data is not a PEM certificate');

  const token = typeof user.token === 'string' ? user.token : undefined;
  const hasCertificate = user['client-certificate-data'] !== undefined || user['client-key-data'] !== undefined;
  if (!token && !hasCertificate) throw new InvalidKubeconfigError('the user has neither a token nor client-certificate-data');
  const tlsServerName = typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined;

  const connection: ClusterConnection = {
    server,
    caPem,
    ...(tlsServerName ? { tlsServerName } : {}),
    ...(hasCertificate ? {
      clientCertPem: decodeInline(user['client-certificate-data'], 'client-certificate-data'),
      clientKeyPem: decodeInline(user['client-key-data'], 'client-key-data'),
    } : {}),
    ...(token ? { bearerToken: () => token } : {}),
  };
  return { connection, endpoint: { clusterName, server, caPem: caPem.endsWith('\n') ? caPem : `${caPem}\n` } };
}
