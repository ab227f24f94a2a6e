// Reads a DPUCluster's admin kubeconfig (from a Secret in the host cluster) into the
// endpoint written to outputs and the connection to call the cluster with.
//
// The text is untrusted: whoever can write that Secret controls it. Only inline data is
// accepted. A kubeconfig may otherwise make its reader run a command (exec, auth-provider
// cmd-path), read local files (token-file, certificate paths: the webhook's own
// ServiceAccount token among them) or skip TLS verification, and so hand the webhook's
// credentials to another server.
import { isScalar, Lexer, parseDocument, visit } from 'yaml';
import { isRecord } from '../api.js';
import { parseUrl } from '../url.js';
import type { ClusterEndpoint } from '../credential/render.js';
import { clusterConnectionOf, type ClusterConnection } from './cluster-connection.js';
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
  const url = parseUrl(server);
  if (!url) throw new InvalidKubeconfigError(`the cluster's server "${server.slice(0, 100)}" is not a URL`);
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

/**
 * Bounds on an untrusted kubeconfig's shape, far above any real one (a kubeadm admin.conf has
 * about 20 lines, 2 flow brackets, no comma and indentation 6; as JSON, about 40 commas),
 * checked in one pass before the YAML parser sees the text. yaml 2.9 recurses once per level
 * of nesting, flow or block: 65,000 '[', or 30,000 "? " on one line, take one to three
 * seconds and overflow the stack; a flow map of 6,500 keys on one line takes half a second.
 */
export const untrustedKubeconfigLimits = { lines: 2_000, flowBrackets: 256, commas: 1_000, lineIndicators: 64, tokens: 2_000 } as const;

/** Refuses, in one pass over `text`, what no kubeconfig needs and what makes the YAML parser slow. */
export function checkUntrustedShape(text: string): void {
  let lines = 1;
  let flowBrackets = 0;
  let commas = 0;
  let atLineStart = true;
  let lineIndicators = 0;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (code === 10) {
      lines += 1;
      atLineStart = true;
      lineIndicators = 0;
      continue;
    }
    if (code === 91 || code === 123) flowBrackets += 1; // [ {
    else if (code === 44) commas += 1; // , between a flow collection's entries
    // A line's leading spaces, tabs and block indicators (- ? :) are its nesting depth.
    if (atLineStart) {
      if (code === 32 || code === 9 || code === 45 || code === 63 || code === 58) lineIndicators += 1;
      else atLineStart = false;
    }
    if (lineIndicators > untrustedKubeconfigLimits.lineIndicators) {
      throw new InvalidKubeconfigError(`line ${lines} is nested deeper than a kubeconfig is (more than ${untrustedKubeconfigLimits.lineIndicators} leading spaces or indicators)`);
    }
  }
  if (lines > untrustedKubeconfigLimits.lines) throw new InvalidKubeconfigError(`${lines} lines, more than a kubeconfig has (${untrustedKubeconfigLimits.lines})`);
  if (flowBrackets > untrustedKubeconfigLimits.flowBrackets) {
    throw new InvalidKubeconfigError(`${flowBrackets} flow brackets ([ or {), more than a kubeconfig has (${untrustedKubeconfigLimits.flowBrackets})`);
  }
  if (commas > untrustedKubeconfigLimits.commas) throw new InvalidKubeconfigError(`${commas} commas, more than a kubeconfig has (${untrustedKubeconfigLimits.commas})`);
  // The parser's time grows with the square of the text for each token it cannot place (a stray
  // ']', '&', '*', '!' or quote: 64 KiB of ']' took 6 s); yaml's own lexer counts them in one pass.
  // A kubeadm admin.conf lexes to about 130 tokens, the same as JSON to about 300.
  let tokens = 0;
  for (const _token of new Lexer().lex(text)) {
    if (++tokens > untrustedKubeconfigLimits.tokens) {
      throw new InvalidKubeconfigError(`more than ${untrustedKubeconfigLimits.tokens} YAML tokens, more than a kubeconfig has`);
    }
  }
}

/**
 * The kubeconfig's document, a map, or InvalidKubeconfigError saying why not. A key repeated
 * in a map is refused (readers would disagree on which one counts), checked here with a set
 * per map: yaml's own uniqueKeys compares every key with every other, which took 85 s on a
 * map of 60,000 keys. `untrusted` (a DPUCluster's kubeconfig) also refuses aliases.
 */
export function parseKubeconfig(text: string, { untrusted = false } = {}): Record<string, unknown> {
  const document = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const [error] = document.errors;
  if (error) throw new InvalidKubeconfigError(`not YAML: ${error.message.split('\n')[0]}`);
  visit(document, {
    Alias() {
      if (untrusted) throw new InvalidKubeconfigError('not a kubeconfig: it uses a YAML alias, which no kubeconfig needs');
    },
    Map(_, map) {
      const keys = new Set<string>();
      for (const { key } of map.items) {
        if (!isScalar(key)) throw new InvalidKubeconfigError('not a kubeconfig: a map has a key that is not a plain value');
        const name = String(key.value);
        if (keys.has(name)) throw new InvalidKubeconfigError(`not a kubeconfig: the key "${name.slice(0, 100)}" appears twice in a map`);
        keys.add(name);
      }
    },
  });
  let value: unknown;
  try {
    value = document.toJS();
  } catch (error) {
    throw new InvalidKubeconfigError(`not YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isRecord(value)) throw new InvalidKubeconfigError('not a kubeconfig: the document is not a map');
  return value;
}

export function loadKubeconfig(text: string): LoadedKubeconfig {
  checkUntrustedShape(text);
  const document = parseKubeconfig(text, { untrusted: true });
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

  const connection = clusterConnectionOf(server, cluster, {
    caPem,
    ...(hasCertificate ? {
      clientCertPem: decodeInline(user['client-certificate-data'], 'client-certificate-data'),
      clientKeyPem: decodeInline(user['client-key-data'], 'client-key-data'),
    } : {}),
    ...(token ? { bearerToken: () => token } : {}),
  });
  return { connection, endpoint: { clusterName, server, caPem: caPem.endsWith('\n') ? caPem : `${caPem}\n` } };
}
