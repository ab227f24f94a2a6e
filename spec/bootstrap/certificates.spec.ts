// The key material the bootstrap makes (server/bootstrap/certificates.ts), checked by openssl,
// by a real TLS handshake for the name Metacontroller calls, and against the 0.3 chart's RSA CA.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCa, issueServingCertificate, newHookToken, type KeyPair } from '../../server/bootstrap/certificates.js';
import { openssl0_3Ca } from './fixtures.js';

const run = promisify(execFile);
// What Metacontroller calls: {service}.{namespace}, no .svc (hooks/webhook.go webhookURL).
const host = 'dpu-credential-webhook.dpu-credential-webhook';
const dnsNames = [host, `${host}.svc`, `${host}.svc.cluster.local`];
const now = new Date();

/** The TLS handshake's verdict for `servername`, against a server presenting `serving`, trusting `caPem` only. */
async function handshake(serving: KeyPair, caPem: string, servername: string): Promise<string> {
  const server = createServer({ cert: serving.certPem, key: serving.keyPem }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    return await new Promise<string>((resolve) => {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, ca: caPem, minVersion: 'TLSv1.2' }, () => {
        resolve('trusted');
        socket.end();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
  } finally {
    server.close();
  }
}

async function opensslVerify(caPem: string, certPem: string, options: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verify-'));
  try {
    await writeFile(join(dir, 'ca.crt'), caPem);
    await writeFile(join(dir, 'tls.crt'), certPem);
    const { stdout } = await run('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), ...options, join(dir, 'tls.crt')]);
    return stdout.trim();
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    return `${failed.stdout ?? ''}${failed.stderr ?? ''}` || String(error);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** openssl's reading of the certificate's basic constraints and key usage. */
async function opensslText(certPem: string): Promise<{ stdout: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'text-'));
  try {
    await writeFile(join(dir, 'c.crt'), certPem);
    return await run('openssl', ['x509', '-noout', '-ext', 'basicConstraints,keyUsage', '-in', join(dir, 'c.crt')]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The DER element at `offset`: where its content starts and where it ends (short and long lengths). */
function derElement(der: Buffer, offset: number): { contentStart: number; end: number } {
  const first = der[offset + 1]!;
  const lengthBytes = first & 0x80 ? first & 0x7f : 0;
  let length = lengthBytes ? 0 : first;
  for (let index = 0; index < lengthBytes; index++) length = length * 256 + der[offset + 2 + index]!;
  const contentStart = offset + 2 + lengthBytes;
  return { contentStart, end: contentStart + length };
}

/** The issuer and subject of a certificate, as their DER bytes (TBSCertificate: version, serial, signature, issuer, validity, subject). */
function issuerAndSubject(pem: string): { issuer: string; subject: string } {
  const der = new X509Certificate(pem).raw;
  const tbs = derElement(der, derElement(der, 0).contentStart);
  const fields: string[] = [];
  for (let at = tbs.contentStart; at < tbs.end && fields.length < 6; at = derElement(der, at).end) fields.push(der.subarray(at, derElement(der, at).end).toString('hex'));
  return { issuer: fields[3]!, subject: fields[5]! };
}

/** The certificate's issuer and the CA's subject, DER: Go's verifier (Metacontroller) matches them byte for byte. */
function issuerAndSubjectDer(certPem: string, caPem: string): [string, string] {
  return [issuerAndSubject(certPem).issuer, issuerAndSubject(caPem).subject];
}

describe('the bootstrap\'s certificates and token', function () {
  this.timeout(30_000);

  it('makes a CA that signs certificates only, valid for the days asked, started a little before now', async function () {
    const ca = await createCa('dpu-credential-webhook-ca', 3650, now);
    const certificate = new X509Certificate(ca.certPem);
    expect(certificate.ca).to.equal(true);
    expect(certificate.subject).to.equal('CN=dpu-credential-webhook-ca');
    expect(Date.parse(certificate.validTo)).to.be.closeTo(now.getTime() + 3650 * 86_400_000, 1000);
    expect(Date.parse(certificate.validFrom)).to.be.below(now.getTime());
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
    const { stdout } = await opensslText(ca.certPem);
    expect(stdout).to.match(/critical\s+CA:TRUE/).and.to.match(/critical\s+Certificate Sign, CRL Sign/);
    expect(await opensslVerify(ca.certPem, ca.certPem, [])).to.match(/: OK$/);
  });

  it('issues a serving certificate that openssl verifies for TLS servers only, and a TLS handshake trusts for the name Metacontroller calls', async function () {
    const ca = await createCa('dpu-credential-webhook-ca', 3650, now);
    const serving = await issueServingCertificate(ca, dnsNames, 365, now);
    expect(await opensslVerify(ca.certPem, serving.certPem, ['-purpose', 'sslserver', '-verify_hostname', host])).to.match(/: OK$/);
    expect(await opensslVerify(ca.certPem, serving.certPem, ['-purpose', 'sslclient'])).to.match(/(unsuitable|unsupported) certificate purpose/);
    const certificate = new X509Certificate(serving.certPem);
    expect(certificate.ca).to.equal(false);
    expect(certificate.subjectAltName).to.equal(dnsNames.map((name) => `DNS:${name}`).join(', '));
    expect(certificate.checkIssued(new X509Certificate(ca.certPem))).to.equal(true);
    expect(issuerAndSubjectDer(serving.certPem, ca.certPem)[0]).to.equal(issuerAndSubjectDer(serving.certPem, ca.certPem)[1]);

    for (const name of dnsNames) expect(await handshake(serving, ca.certPem, name), name).to.equal('trusted');
    expect(await handshake(serving, ca.certPem, 'dpu-credential-webhook.other')).to.equal('ERR_TLS_CERT_ALTNAME_INVALID');
    const stranger = await createCa('stranger', 1, now);
    expect(await handshake(serving, stranger.certPem, host)).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('issues from the 0.3 chart\'s RSA CA (PKCS#1 key): openssl and the handshake trust it, its issuer is the CA\'s subject byte for byte', async function () {
    const old = await openssl0_3Ca();
    const serving = await issueServingCertificate(old, dnsNames, 365, now);
    expect(await opensslVerify(old.certPem, serving.certPem, ['-purpose', 'sslserver', '-verify_hostname', host])).to.match(/: OK$/);
    expect(await handshake(serving, old.certPem, host)).to.equal('trusted');
    const [issuer, subject] = issuerAndSubjectDer(serving.certPem, old.certPem);
    expect(issuer).to.equal(subject);
  });

  it('never issues a serving certificate past its CA\'s end', async function () {
    const now = new Date('2026-01-01T00:00:00Z');
    const shortCa = await createCa('dcw-ca', 10, now);
    const serving = await issueServingCertificate(shortCa, ['dcw.ns'], 365, now);
    expect(new X509Certificate(serving.certPem).validTo).to.equal(new X509Certificate(shortCa.certPem).validTo);
    expect(serving.notAfter.getTime()).to.equal(shortCa.notAfter.getTime());
  });

  it('makes a token of 64 characters from [A-Za-z0-9], a new one each time', function () {
    const tokens = new Set(Array.from({ length: 100 }, newHookToken));
    expect(tokens.size).to.equal(100);
    for (const token of tokens) expect(token).to.match(/^[A-Za-z0-9]{64}$/);
    // Every character of the alphabet turns up (6,400 draws of 62): no character is left out by a biased draw.
    expect(new Set([...tokens].join('')).size).to.equal(62);
  });
});
