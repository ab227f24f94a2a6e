// Every setting, from the environment, in one place. docs/operations.md lists them.
import { parseDurationMs } from './credential/duration.js';
import { crdMaxTokenDurationSeconds, defaultPolicy, type Policy } from './credential/policy.js';
import { idleTargetCloseMs } from './kube/clusters.js';
import { logLevels, type LogLevel } from './log.js';
import { parseUrl } from './url.js';

export interface Config {
  port: number;
  /** Plain-HTTP port of /metrics alone, apart from the hooks' port. */
  metricsPort: number;
  logLevel: LogLevel;
  /** Server written to outputs for the host cluster; default: in-cluster env, else the kubeconfig's. */
  hostClusterServer?: string;
  /** Bound on each call to a Kubernetes API server; the hook's deadline bounds them all together. */
  remoteTimeoutMs: number;
  /** Largest hook request body accepted. */
  maxBodyBytes: number;
  /** A file holding the bearer token every hook call must carry; unset: no hook authentication. */
  hookBearerTokenFile?: string;
  /** Serve HTTPS with these (PEM); both or neither. Reloaded when they change. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /** Hooks must present a client certificate signed by a CA in this file (PEM); needs TLS. Reloaded when it changes. */
  tlsClientCaFile?: string;
  /** With tlsClientCaFile: the subject common name that client certificate must carry (besides the clientAuth usage). */
  tlsClientSubject?: string;
  /**
   * Start although the hooks are served without TLS or without authentication (ALLOW_INSECURE_HOOKS=true):
   * for a local test only. `insecureHooks` says which of the two is missing.
   */
  allowInsecureHooks: boolean;
  /** How often watched files (token, certificate) are checked for changes. */
  filePollIntervalMs: number;
  /** After SIGTERM, in-flight hooks get this long before the process exits anyway. */
  shutdownTimeoutMs: number;
  /** A target cluster no sync has used for this long is closed (its client, connections and watch). */
  idleTargetCloseMs: number;
  /** What requests may ask for: protected namespaces, the token lifetime ceiling, renewal grace, rotation interval. */
  policy: Policy;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name}=${text}: expected a whole number from ${min} to ${max}`);
  }
  return value;
}

function httpsUrl(name: string, text: string): string {
  const url = parseUrl(text);
  if (!url || url.protocol !== 'https:' || !url.hostname) throw new ConfigError(`${name}=${text}: expected an https URL such as https://10.0.0.1:6443`);
  return text.replace(/\/+$/, '');
}

/** The commonName of deploy/cert-manager/client-certificate.yaml. */
export const defaultClientSubject = 'metacontroller';

function tlsFiles(env: NodeJS.ProcessEnv): Pick<Config, 'tlsCertFile' | 'tlsKeyFile' | 'tlsClientCaFile' | 'tlsClientSubject'> {
  const { TLS_CERT_FILE: cert, TLS_KEY_FILE: key, TLS_CLIENT_CA_FILE: clientCa } = env;
  const subject = env.TLS_CLIENT_SUBJECT?.trim() || undefined;
  if (clientCa && (!cert || !key)) throw new ConfigError('TLS_CLIENT_CA_FILE needs TLS: set TLS_CERT_FILE and TLS_KEY_FILE too');
  // A subject with no CA to check the chain against would look like a check and be none.
  if (subject !== undefined && !clientCa) throw new ConfigError('TLS_CLIENT_SUBJECT needs TLS_CLIENT_CA_FILE: set it too, or unset TLS_CLIENT_SUBJECT');
  if (!cert && !key) return {};
  if (!cert || !key) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither');
  return {
    tlsCertFile: cert, tlsKeyFile: key,
    ...(clientCa ? { tlsClientCaFile: clientCa, tlsClientSubject: subject ?? defaultClientSubject } : {}),
  };
}

function boolean(env: NodeJS.ProcessEnv, name: string): boolean {
  const text = env[name];
  if (text === undefined || text === '' || text === 'false') return false;
  if (text === 'true') return true;
  throw new ConfigError(`${name}=${text}: expected true or false`);
}

/** What a client of the hook port is not protected by, in words an operator can act on; empty: nothing. */
export function insecureHooks(config: Pick<Config, 'tlsCertFile' | 'hookBearerTokenFile' | 'tlsClientCaFile'>): string[] {
  return [
    ...(config.tlsCertFile ? [] : ['no TLS (set TLS_CERT_FILE and TLS_KEY_FILE)']),
    ...(config.hookBearerTokenFile || config.tlsClientCaFile ? [] : ['no hook authentication (set HOOK_BEARER_TOKEN_FILE or TLS_CLIENT_CA_FILE)']),
  ];
}

function duration(env: NodeJS.ProcessEnv, name: string, fallbackMs: number, minMs: number, maxMs: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallbackMs;
  const value = parseDurationMs(text);
  if (value === undefined || value < minMs || value > maxMs) {
    throw new ConfigError(`${name}=${text}: expected a duration such as 90m or 24h, from ${minMs / 1_000}s to ${maxMs / 1_000}s`);
  }
  return value;
}

function namespaceList(env: NodeJS.ProcessEnv, name: string, fallback: string[]): string[] {
  const text = env[name];
  if (text === undefined) return fallback;
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const bad = entries.find((entry) => !/^[a-z0-9][-a-z0-9]{0,62}\*?$/.test(entry));
  if (bad !== undefined) throw new ConfigError(`${name}: "${bad}" is neither a namespace name nor a prefix ending in *`);
  return entries;
}

function loadPolicy(env: NodeJS.ProcessEnv): Policy {
  return {
    protectedNamespaces: namespaceList(env, 'PROTECTED_NAMESPACES', defaultPolicy.protectedNamespaces),
    maxTokenDurationSeconds: duration(env, 'MAX_TOKEN_DURATION', defaultPolicy.maxTokenDurationSeconds * 1_000,
      10 * 60_000, crdMaxTokenDurationSeconds * 1_000) / 1_000,
    renewalGraceMs: duration(env, 'RENEWAL_GRACE', defaultPolicy.renewalGraceMs, 0, 3_600_000),
    minForcedRotationIntervalMs: duration(env, 'MIN_FORCED_ROTATION_INTERVAL', defaultPolicy.minForcedRotationIntervalMs, 0, 3_600_000),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel;
  if (!logLevels.includes(logLevel)) throw new ConfigError(`LOG_LEVEL=${env.LOG_LEVEL}: expected one of ${logLevels.join(', ')}`);
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const metricsPort = integer(env, 'METRICS_PORT', 9090, 0, 65535);
  if (port !== 0 && port === metricsPort) throw new ConfigError(`METRICS_PORT=${metricsPort} is PORT too: /metrics has a port of its own, set another`);
  const config: Config = {
    port,
    metricsPort,
    logLevel,
    ...(env.HOST_CLUSTER_SERVER ? { hostClusterServer: httpsUrl('HOST_CLUSTER_SERVER', env.HOST_CLUSTER_SERVER) } : {}),
    // One slow call may not take the whole hook's time: the deadline would leave no room for the rest.
    remoteTimeoutMs: integer(env, 'REMOTE_TIMEOUT_MS', 2_000, 100, 3_000),
    // Above the largest hook request a tenant can make (its request near etcd's 1.5 MiB object limit, plus
    // the Secret and the DPUCluster): a 413 would end every sync before the grant check.
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 4 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    ...(env.HOOK_BEARER_TOKEN_FILE ? { hookBearerTokenFile: env.HOOK_BEARER_TOKEN_FILE } : {}),
    ...tlsFiles(env),
    allowInsecureHooks: boolean(env, 'ALLOW_INSECURE_HOOKS'),
    filePollIntervalMs: integer(env, 'FILE_POLL_INTERVAL_MS', 5_000, 10, 600_000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 15_000, 0, 600_000),
    idleTargetCloseMs: integer(env, 'IDLE_TARGET_CLOSE_MS', idleTargetCloseMs, 1_000, 86_400_000),
    policy: loadPolicy(env),
  };
  // The hooks mint credentials: an install that forgot its Secrets must not come up open.
  // A bearer token without TLS counts as insecure too: it would cross the network in clear.
  const missing = insecureHooks(config);
  if (missing.length && !config.allowInsecureHooks) {
    throw new ConfigError(`refusing to serve the hooks with ${missing.join(' and ')}: anyone who reaches the port could mint tokens. `
      + 'For a local test only, set ALLOW_INSECURE_HOOKS=true');
  }
  return config;
}
