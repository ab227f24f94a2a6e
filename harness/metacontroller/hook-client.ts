// Metacontroller's webhook executor (pkg/hooks/webhook.go, webhook_plain.go, cabundle.go,
// auth.go, endpoint_config.go in v4.17.2), as far as an install can break on it: the URL it
// builds, the TLS check against caBundle, the authorization header read once when the
// controller is built, the timeout, 200-only success, 429 with Retry-After, and the decoding
// of answers (hook-response.ts).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { KubeRestClient } from '../../server/kube/rest.js';
import { connectionSettingsFor, timeoutMsOf, webhookUrl, type ConnectionSettings, type Hook, type ResourceKeyRef } from './controller-spec.js';
import { answerProblems } from './hook-response.js';
import { retryAfterSecondsAsGo } from './retry-after.js';

/** Any failed hook call: Metacontroller changes nothing for that parent and retries with backoff. */
export class HookError extends Error {
  override name = 'HookError';
}

/** A Secret the hook's connection reads lacks its key: the controller's build fails, and is retried. */
export class SecretValueMissing extends HookError {
  override name = 'SecretValueMissing';
}

/**
 * HTTP 429: Metacontroller requeues the parent after Retry-After seconds, without an error
 * event; `afterSeconds` <= 0 (no header, or one Go cannot read) means at once, without backoff.
 */
export class TooManyRequestsError extends HookError {
  override name = 'TooManyRequestsError';
  constructor(readonly afterSeconds: number) {
    super(`hook answered 429; retry after ${afterSeconds}s`);
  }
}

/**
 * Cluster DNS and Services, for hooks addressed by `service`: "name.namespace:port" to
 * the loopback address the webhook really listens on. A host not listed does not resolve.
 */
export type ClusterNetwork = Record<string, { host: string; port: number }>;

interface Resolved {
  caPem?: string;
  clientCert?: { cert: string; key: string };
  authHeader?: string;
}

const secretValue = async (host: KubeRestClient, ref: ResourceKeyRef, defaultKey?: string): Promise<string> => {
  const key = ref.key || defaultKey;
  if (!key) throw new HookError(`secretRef ${ref.namespace}/${ref.name}: key is required`);
  const secret = await host.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ref.namespace}/secrets/${ref.name}`);
  const value = secret.data?.[key];
  if (!value) throw new SecretValueMissing(`secret ${ref.namespace}/${ref.name} has no key ${key}`);
  return Buffer.from(value, 'base64').toString('utf8');
};

/** resolveFields(): the Secrets are read here, once, when the controller is built. */
async function resolveConnection(host: KubeRestClient, settings: ConnectionSettings | undefined): Promise<Resolved> {
  if (!settings) return {};
  if (settings.basicAuth) throw new HookError('basicAuth is not modelled by this driver');
  const resolved: Resolved = {};
  const ca = settings.caBundle;
  if (ca) {
    if (ca.inline) resolved.caPem = ca.inline;
    else if (ca.secretRef) resolved.caPem = await secretValue(host, ca.secretRef, 'ca.crt');
    else throw new HookError('caBundle is set but none of inline, secretRef, or configMapRef is specified (configMapRef is not modelled)');
  }
  if (settings.clientTLS) {
    const ref = settings.clientTLS.secretRef;
    resolved.clientCert = {
      cert: await secretValue(host, { ...ref, key: settings.clientTLS.certKey ?? 'tls.crt' }),
      key: await secretValue(host, { ...ref, key: settings.clientTLS.privateKeyKey ?? 'tls.key' }),
    };
  }
  if (settings.authorization) {
    const type = settings.authorization.type || 'Bearer';
    if (type.toLowerCase() === 'basic') throw new HookError('authorization type basic is refused; use basicAuth');
    // ResolveAuthorization: the Secret's value with surrounding whitespace trimmed.
    resolved.authHeader = `${type} ${(await secretValue(host, settings.authorization.secretRef)).trim()}`;
  }
  return resolved;
}

/**
 * crypto/x509 VerifyHostname: a host name matches DNS SANs only. Node falls back to the
 * subject CN when a certificate has no DNS SAN; Go never does, so a CN-only certificate fails.
 */
function verifyHostnameAsGo(hostname: string, certificate: PeerCertificate): Error | undefined {
  const hasDnsName = (certificate.subjectaltname ?? '').split(', ').some((name) => name.startsWith('DNS:'));
  if (!isIP(hostname) && !hasDnsName) {
    if (certificate.subjectaltname) return new Error(`x509: certificate is valid for ${certificate.subjectaltname}, not ${hostname}`);
    return new Error(certificate.subject?.CN?.toString().toLowerCase() === hostname.toLowerCase()
      ? 'x509: certificate relies on legacy Common Name field, use SANs instead'
      : `x509: certificate is not valid for any names, but wanted to match ${hostname}`);
  }
  return checkServerIdentity(hostname, certificate);
}

export interface HookCallRecord {
  hook: string;
  url: string;
  statusCode: number;
  error?: string;
  /** A 429's Retry-After header as it came over the wire. */
  retryAfter?: string;
}

/** One hook (customize, sync or finalize) with its connection resolved at build time. */
export class HookClient {
  private constructor(
    readonly name: string,
    readonly url: string,
    private readonly timeoutMs: number,
    private readonly strict: boolean,
    private readonly resolved: Resolved,
    private readonly agent: Agent | undefined,
    private readonly network: ClusterNetwork,
    private readonly record: (call: HookCallRecord) => void,
  ) {}

  static async build(name: string, hook: Hook, endpointConfigs: ConnectionSettings[] | undefined, host: KubeRestClient,
    network: ClusterNetwork, record: (call: HookCallRecord) => void): Promise<HookClient> {
    const url = webhookUrl(hook.webhook);
    const resolved = await resolveConnection(host, connectionSettingsFor(hook.webhook, endpointConfigs as never));
    // A transport of its own only with a CA bundle or a client certificate (buildTLSTransport); its
    // RootCAs are the bundle alone. Go's keep-alive pool is modelled by the agent's.
    const agent = url.startsWith('https:') ? new Agent({
      keepAlive: true,
      minVersion: 'TLSv1.2',
      checkServerIdentity: verifyHostnameAsGo,
      ...(resolved.caPem ? { ca: resolved.caPem } : {}),
      ...(resolved.clientCert ? { cert: resolved.clientCert.cert, key: resolved.clientCert.key } : {}),
    }) : undefined;
    return new HookClient(name, url, timeoutMsOf(hook.webhook), (hook.version ?? 'v1') === 'v2', resolved, agent, network, record);
  }

  close(): void {
    this.agent?.destroy();
  }

  /** POSTs the request; the decoded answer, or a HookError as Metacontroller would see it. */
  async call(body: unknown): Promise<unknown> {
    const url = new URL(this.url);
    const explicitPort = /^[a-z]+:\/\/[^/]*:(\d+)/i.exec(this.url)?.[1];
    const port = explicitPort ?? (url.protocol === 'https:' ? '443' : '80');
    const route = this.network[`${url.hostname}:${port}`];
    const isIp = /^[\d.]+$|:/.test(url.hostname);
    if (!route && !isIp && url.hostname !== 'localhost') {
      throw this.fail(0, new HookError(`http error: Post "${this.url}": dial tcp: lookup ${url.hostname}: no such host`));
    }
    // Cluster DNS resolves the service name to the Service; the Service forwards its port.
    const lookup: LookupFunction = (_hostname, options, callback) => {
      const address = route?.host ?? '127.0.0.1';
      if ((options as { all?: boolean }).all) (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family: 4 }]);
      else callback(null, address, 4);
    };
    const payload = JSON.stringify(body);
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) };
    if (this.resolved.authHeader) headers.Authorization = this.resolved.authHeader;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;

    let response: { statusCode: number; headers: IncomingMessage['headers']; text: string };
    try {
      response = await new Promise((resolve, reject) => {
        const req = send({
          protocol: url.protocol, hostname: url.hostname, port: route?.port ?? Number(port), path: `${url.pathname}${url.search}`,
          method: 'POST', headers, lookup, ...(this.agent ? { agent: this.agent, servername: isIp ? undefined : url.hostname } : {}),
        }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        // http.Client{Timeout}: the whole exchange, body included.
        const deadline = setTimeout(() => req.destroy(new Error(`context deadline exceeded (Client.Timeout ${this.timeoutMs} ms)`)), this.timeoutMs);
        req.on('close', () => clearTimeout(deadline));
        req.on('error', reject);
        req.end(payload);
      });
    } catch (error) {
      throw this.fail(0, new HookError(`http error: Post "${this.url}": ${(error as Error).message}`));
    }

    if (response.statusCode === 429) {
      const retryAfter = response.headers['retry-after'];
      throw this.fail(429, new TooManyRequestsError(retryAfterSecondsAsGo(retryAfter, Date.now())), retryAfter);
    }
    if (response.statusCode !== 200) {
      throw this.fail(response.statusCode, new HookError(`unsupported status code: ${response.statusCode} body: ${response.text}`));
    }
    let decoded: unknown;
    try {
      decoded = JSON.parse(response.text);
    } catch {
      throw this.fail(200, new HookError(`can't unmarshal webhookResponse (type: ${this.name}): not JSON`));
    }
    const { typeErrors, unknownFields } = answerProblems(this.name, decoded);
    if (typeErrors.length > 0) throw this.fail(200, new HookError(`can't unmarshal webhookResponse (type: ${this.name}): ${typeErrors.join(', ')}`));
    if (this.strict && unknownFields.length > 0) {
      throw this.fail(200, new HookError(`strict validation failed for v2 webhookResponse (type: ${this.name}): ${unknownFields.join(', ')}`));
    }
    this.record({ hook: this.name, url: this.url, statusCode: 200 });
    return decoded;
  }

  private fail(statusCode: number, error: HookError, retryAfter?: string): HookError {
    this.record({ hook: this.name, url: this.url, statusCode, error: error.message, ...(retryAfter === undefined ? {} : { retryAfter }) });
    return error;
  }
}
