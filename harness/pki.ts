// A throw-away PKI for one test control plane: a CA, the API server's serving
// certificate, an admin client certificate and the service-account signing key.
// Certificates come from the openssl CLI because Node has no X.509 writer.
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const certificateValidityDays = 2;

export interface ControlPlanePki {
  caCertPath: string;
  caCertPem: string;
  servingCertPath: string;
  servingKeyPath: string;
  adminCertPem: string;
  adminKeyPem: string;
  serviceAccountPublicKeyPath: string;
  serviceAccountPrivateKeyPath: string;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim() || String(error)}`);
  }
}

async function issueCertificate(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
): Promise<{ certPath: string; keyPath: string }> {
  const keyPath = join(dir, `${name}.key`);
  const csrPath = join(dir, `${name}.csr`);
  const certPath = join(dir, `${name}.crt`);
  const extPath = join(dir, `${name}.ext`);
  await writeFile(extPath, extensions);
  await openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', keyPath, '-out', csrPath, '-subj', subject]);
  await openssl(['x509', '-req', '-in', csrPath, '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', String(certificateValidityDays),
    '-extfile', extPath, '-out', certPath]);
  return { certPath, keyPath };
}

/** What a leaf certificate says about itself. */
export interface LeafProfile {
  /** Subject CN; default: the first DNS name, else the certificate's file name. */
  commonName?: string;
  dnsNames?: string[];
  /** openssl's extendedKeyUsage value ("serverAuth", "clientAuth", "serverAuth,clientAuth"); null: no such extension. */
  extendedKeyUsage: string | null;
}

export interface ServingPki {
  caCertPem: string;
  certPem: string;
  keyPem: string;
  /** Another serving certificate from the same CA (a renewal, or one with other names). */
  issue(name: string, dnsNames: string[]): Promise<{ certPem: string; keyPem: string }>;
  /** Any leaf from the same CA: a client certificate, or one with other usages. */
  issueLeaf(name: string, profile: LeafProfile): Promise<{ certPem: string; keyPem: string }>;
}

/**
 * A CA and a serving certificate it signed, laid out as cert-manager's CA Issuer writes
 * them (the serving Secret's ca.crt is the CA's): the webhook's HTTPS endpoint.
 */
export async function createServingPki(dir: string, dnsNames: string[]): Promise<ServingPki> {
  await openssl(['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', String(certificateValidityDays),
    '-subj', `/CN=webhook-ca-${randomBytes(4).toString('hex')}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issueLeaf = async (name: string, profile: LeafProfile) => {
    const names = profile.dnsNames ?? [];
    const issued = await issueCertificate(dir, name, `/CN=${profile.commonName ?? names[0] ?? name}`, [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      ...(profile.extendedKeyUsage === null ? [] : [`extendedKeyUsage=${profile.extendedKeyUsage}`]),
      ...(names.length ? [`subjectAltName=${names.map((dnsName) => `DNS:${dnsName}`).join(',')}`] : []),
    ].join('\n'));
    return { certPem: await readFile(issued.certPath, 'utf8'), keyPem: await readFile(issued.keyPath, 'utf8') };
  };
  const issue = (name: string, names: string[]) => issueLeaf(name, { dnsNames: names, extendedKeyUsage: 'serverAuth' });
  const serving = await issue('serving', dnsNames);
  return { caCertPem: await readFile(join(dir, 'ca.crt'), 'utf8'), ...serving, issue, issueLeaf };
}

/** A CA of its own and a client certificate it signed: what Metacontroller's clientTLS presents. */
export async function createClientPki(dir: string, commonName: string): Promise<{ caCertPem: string; certPem: string; keyPem: string }> {
  await openssl(['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', String(certificateValidityDays),
    '-subj', `/CN=client-ca-${randomBytes(4).toString('hex')}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const issued = await issueCertificate(dir, 'client', `/CN=${commonName}`,
    ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth'].join('\n'));
  return {
    caCertPem: await readFile(join(dir, 'ca.crt'), 'utf8'),
    certPem: await readFile(issued.certPath, 'utf8'),
    keyPem: await readFile(issued.keyPath, 'utf8'),
  };
}

/**
 * `extraIpSans`: more IP addresses the API server's serving certificate names, besides
 * 127.0.0.1, ::1 and localhost (the fleet benchmark reaches one API server through many
 * loopback addresses).
 */
export async function createControlPlanePki(dir: string, clusterName: string, extraIpSans: string[] = []): Promise<ControlPlanePki> {
  const caCertPath = join(dir, 'ca.crt');
  await openssl(['req', '-x509', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-keyout', join(dir, 'ca.key'), '-out', caCertPath, '-days', String(certificateValidityDays),
    '-subj', `/CN=${clusterName}-ca-${randomBytes(4).toString('hex')}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);

  const [serving, admin] = await Promise.all([
    issueCertificate(dir, 'serving', '/CN=kube-apiserver', [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${['IP:127.0.0.1', 'IP:0:0:0:0:0:0:0:1', 'DNS:localhost', ...extraIpSans.map((ip) => `IP:${ip}`)].join(',')}`,
    ].join('\n')),
    // system:masters makes this identity a cluster admin without any RBAC binding.
    issueCertificate(dir, 'admin', '/O=system:masters/CN=admin', [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ].join('\n')),
  ]);

  const serviceAccountKeys = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const serviceAccountPublicKeyPath = join(dir, 'sa.pub');
  const serviceAccountPrivateKeyPath = join(dir, 'sa.key');
  await writeFile(serviceAccountPublicKeyPath, serviceAccountKeys.publicKey);
  await writeFile(serviceAccountPrivateKeyPath, serviceAccountKeys.privateKey, { mode: 0o600 });

  return {
    caCertPath,
    caCertPem: await readFile(caCertPath, 'utf8'),
    servingCertPath: serving.certPath,
    servingKeyPath: serving.keyPath,
    adminCertPem: await readFile(admin.certPath, 'utf8'),
    adminKeyPem: await readFile(admin.keyPath, 'utf8'),
    serviceAccountPublicKeyPath,
    serviceAccountPrivateKeyPath,
  };
}
