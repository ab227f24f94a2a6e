// The webhook's install as the README and the shipped manifests describe it, on a test
// host: the namespace, the CA and serving-certificate Secrets as cert-manager writes them
// for deploy/cert-manager/certificate.yaml (with the dnsNames written there), the hook-token
// Secret, and the two Secret volumes the Deployment mounts. Names come from the manifests,
// so a manifest that drifts from what Metacontroller checks fails the tests.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { randomBytes, X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { createServingPki, type ServingPki } from './pki.js';
import { SecretVolume } from './secret-volume.js';

const certificatePath = fileURLToPath(new URL('../deploy/cert-manager/certificate.yaml', import.meta.url));

interface Certificate {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: { isCA?: boolean; secretName: string; dnsNames?: string[] };
}

export interface ShippedCertificates {
  namespace: string;
  caSecretName: string;
  servingSecretName: string;
  dnsNames: string[];
}

export async function readShippedCertificates(): Promise<ShippedCertificates> {
  const documents = parseAllDocuments(await readFile(certificatePath, 'utf8')).map((document) => document.toJS() as Certificate);
  const certificates = documents.filter((document) => document.kind === 'Certificate');
  const ca = certificates.find((certificate) => certificate.spec.isCA);
  const serving = certificates.find((certificate) => !certificate.spec.isCA);
  if (!ca || !serving) throw new Error(`${certificatePath} must hold a CA Certificate and a serving Certificate`);
  return { namespace: serving.metadata.namespace, caSecretName: ca.spec.secretName, servingSecretName: serving.spec.secretName, dnsNames: serving.spec.dnsNames ?? [] };
}

const base64 = (text: string) => Buffer.from(text).toString('base64');

async function readSecretData(host: KubeConfig, namespace: string, name: string): Promise<Record<string, string>> {
  const secret = await host.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace, name });
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
}

export class WebhookInstall {
  /** The hook-token Secret's `token` now: what Metacontroller sends once it has read it. */
  hookToken = '';

  private constructor(
    private readonly host: KubeConfig,
    readonly certificates: ShippedCertificates,
    readonly pki: ServingPki,
    /** The hook-token Secret as mounted in the webhook's Pod (HOOK_BEARER_TOKEN_FILE is its `token`). */
    readonly tokenVolume: SecretVolume,
    /** The serving certificate as mounted (TLS_CERT_FILE, TLS_KEY_FILE). */
    readonly tlsVolume: SecretVolume,
    readonly hookTokenSecretName: string,
  ) {}

  /** `servingDnsNames`: to test a certificate other than the shipped one. */
  static async create(host: KubeConfig, dir: string, options: { hookTokenSecretName?: string; servingDnsNames?: string[] } = {}): Promise<WebhookInstall> {
    const certificates = await readShippedCertificates();
    const pki = await createServingPki(dir, options.servingDnsNames ?? certificates.dnsNames);
    const install = new WebhookInstall(host, certificates, pki, new SecretVolume(join(dir, 'hook-token')), new SecretVolume(join(dir, 'tls')),
      options.hookTokenSecretName ?? 'dpu-credential-webhook-hook-token');
    const core = host.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: certificates.namespace } } }).catch(() => undefined);
    await install.putSecret(certificates.caSecretName, { 'ca.crt': pki.caCertPem, 'tls.crt': pki.caCertPem });
    await install.setServingCertificate(pki);
    await install.setHookTokens({ token: randomBytes(32).toString('hex') });
    return install;
  }

  /**
   * The install a Helm release made: the CA, serving-certificate and hook-token Secrets read
   * from the host cluster (as the chart generated them), mounted as the Deployment mounts them.
   * `syncVolumes()` mounts them again, as the kubelet does after the Secrets changed.
   */
  static async fromCluster(host: KubeConfig, dir: string, secrets: { namespace: string; caSecretName: string; servingSecretName: string; hookTokenSecretName: string }): Promise<WebhookInstall> {
    const caCertPem = (await readSecretData(host, secrets.namespace, secrets.caSecretName))['ca.crt'] ?? '';
    const notIssuedHere = () => Promise.reject(new Error('the chart\'s CA key stays in the cluster: no certificate is issued by the test'));
    const pki: ServingPki = { caCertPem, certPem: '', keyPem: '', issue: notIssuedHere, issueLeaf: notIssuedHere };
    const install = new WebhookInstall(host, { namespace: secrets.namespace, caSecretName: secrets.caSecretName, servingSecretName: secrets.servingSecretName, dnsNames: [] },
      pki, new SecretVolume(join(dir, 'hook-token')), new SecretVolume(join(dir, 'tls')), secrets.hookTokenSecretName);
    await install.syncVolumes();
    return install;
  }

  /** The volumes hold the Secrets as they are now in the host cluster (the kubelet's sync). */
  async syncVolumes(): Promise<void> {
    const { namespace, servingSecretName } = this.certificates;
    const serving = await readSecretData(this.host, namespace, servingSecretName);
    const tokens = await readSecretData(this.host, namespace, this.hookTokenSecretName);
    await this.tlsVolume.write(serving);
    await this.tokenVolume.write(tokens);
    this.hookToken = tokens.token ?? '';
    this.pki.certPem = serving['tls.crt'] ?? '';
    this.pki.keyPem = serving['tls.key'] ?? '';
    this.certificates.dnsNames = new X509Certificate(this.pki.certPem).subjectAltName?.split(', ')
      .filter((name) => name.startsWith('DNS:')).map((name) => name.slice('DNS:'.length)) ?? [];
  }

  get tokenFile(): string {
    return this.tokenVolume.path('token');
  }

  /** The host name Metacontroller calls and checks the certificate for: {service}.{namespace}. */
  get serviceHost(): string {
    return this.certificates.dnsNames.find((name) => name.split('.').length === 2) ?? this.certificates.dnsNames[0] ?? '';
  }

  /**
   * A call straight to the webhook on loopback, as curl with --resolve would make it: TLS
   * checked against the CA for the service host name, the hook token unless one is given.
   */
  async call(port: number, path: string, options: { method?: string; body?: string; token?: string | null } = {}): Promise<{ status: number; body: string; serial: string }> {
    const token = options.token === undefined ? this.hookToken : options.token;
    return await new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      if (options.body) headers['Content-Type'] = 'application/json';
      const req = httpsRequest({
        host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers, ca: this.pki.caCertPem,
        servername: this.serviceHost, timeout: 10_000, agent: false,
      }, (res) => {
        const chunks: Buffer[] = [];
        const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), serial }));
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }

  /** The serving Secret, and its volume, after cert-manager issued or renewed it. */
  async setServingCertificate(serving: { certPem: string; keyPem: string }): Promise<void> {
    const data = { 'tls.crt': serving.certPem, 'tls.key': serving.keyPem, 'ca.crt': this.pki.caCertPem };
    await this.putSecret(this.certificates.servingSecretName, data);
    await this.tlsVolume.write(data);
  }

  /** The hook-token Secret, and its volume in the webhook's Pod (the kubelet syncs it). */
  async setHookTokens(data: { token: string; previous?: string }): Promise<void> {
    const keys: Record<string, string> = { token: data.token, ...(data.previous ? { previous: data.previous } : {}) };
    await this.putSecret(this.hookTokenSecretName, keys);
    await this.tokenVolume.write(keys);
    this.hookToken = data.token;
  }

  private async putSecret(name: string, data: Record<string, string>): Promise<void> {
    const core = this.host.makeApiClient(CoreV1Api);
    const body = { metadata: { name, namespace: this.certificates.namespace }, type: 'Opaque',
      data: Object.fromEntries(Object.entries(data).map(([key, value]) => [key, base64(value)])) };
    await core.deleteNamespacedSecret({ namespace: this.certificates.namespace, name }).catch(() => undefined);
    await core.createNamespacedSecret({ namespace: this.certificates.namespace, body });
  }
}
