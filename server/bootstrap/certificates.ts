// The key material the bootstrap makes: the hook token, a CA, and serving certificates the CA
// signs. node:crypto makes keys and signs but cannot write a certificate; @peculiar/x509 writes
// them (over WebCrypto), and needs the reflect-metadata polyfill for its dependency tsyringe:
// imported here, by the bootstrap alone, never by the webhook's process.
import 'reflect-metadata';
import { createPrivateKey, randomInt, webcrypto, X509Certificate as NodeX509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

/** A certificate and its key, PEM (the key PKCS#8). */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate extends KeyPair {
  notAfter: Date;
}

const tokenAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** As the 0.3 chart's randAlphaNum 64: about 381 bits. */
export const hookTokenLength = 64;
/** Certificates start this long before they are made: a node whose clock is a little behind still accepts them. */
export const backdateMs = 5 * 60_000;
const msPerDay = 86_400_000;

/** 64 characters from [A-Za-z0-9], each drawn uniformly (randomInt rejects the bias of a modulo). */
export function newHookToken(): string {
  let token = '';
  for (let index = 0; index < hookTokenLength; index++) token += tokenAlphabet[randomInt(tokenAlphabet.length)];
  return token;
}

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function newKeys(): Promise<webcrypto.CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A random positive serial number of 16 bytes (RFC 5280: at most 20, positive). */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f | 0x01;
  return Buffer.from(bytes).toString('hex');
}

/** A CA of `validityDays` from now, ECDSA P-256: signs certificates only. */
export async function createCa(commonName: string, validityDays: number, now: Date): Promise<IssuedCertificate> {
  const keys = await newKeys();
  const notAfter = new Date(now.getTime() + validityDays * msPerDay);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(), name: [{ CN: [commonName] }], keys, signingAlgorithm: ecdsa,
    notBefore: new Date(now.getTime() - backdateMs), notAfter,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await keyPem(keys.privateKey), notAfter };
}

/**
 * The CA's key as WebCrypto takes it, with the algorithm it signs with: an ECDSA key (this
 * bootstrap's CAs) or an RSA one (the 0.3 chart's genCA, PKCS#1), read by node:crypto whatever
 * its PEM form.
 */
async function signingKeyOf(caKeyPem: string): Promise<{ key: webcrypto.CryptoKey; algorithm: webcrypto.Algorithm | webcrypto.EcdsaParams }> {
  const key = createPrivateKey(caKeyPem);
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType === 'rsa') {
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']), algorithm };
  }
  if (key.asymmetricKeyType === 'ec') {
    const namedCurve = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!namedCurve) throw new Error(`the CA's key is on a curve the bootstrap does not sign with: ${key.asymmetricKeyDetails?.namedCurve}`);
    const hash = namedCurve === 'P-256' ? 'SHA-256' : namedCurve === 'P-384' ? 'SHA-384' : 'SHA-512';
    return { key: await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve }, false, ['sign']), algorithm: { name: 'ECDSA', hash } };
  }
  throw new Error(`the CA's key is of a type the bootstrap does not sign with: ${key.asymmetricKeyType}`);
}

/**
 * A serving certificate for `dnsNames` (the first is the subject's common name too), signed by
 * `ca`, ending `validityDays` from now or with the CA, whichever is first: server authentication only, so it can never pass as a client certificate (the webhook's
 * mutual-TLS check wants clientAuth). Its issuer is the CA's subject byte for byte, as Go's
 * verifier (Metacontroller) matches them.
 */
export async function issueServingCertificate(ca: KeyPair, dnsNames: string[], validityDays: number, now: Date): Promise<IssuedCertificate> {
  if (dnsNames.length === 0) throw new Error('a serving certificate needs at least one DNS name');
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const signing = await signingKeyOf(ca.keyPem);
  const keys = await newKeys();
  // Never past the CA's end: a chain is only as valid as its CA (the bootstrap renews it as the CA nears its end).
  const notAfter = new Date(Math.min(now.getTime() + validityDays * msPerDay, caCertificate.notAfter.getTime()));
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(), subject: [{ CN: [dnsNames[0]!] }], issuer: caCertificate.subjectName,
    notBefore: new Date(now.getTime() - backdateMs), notAfter,
    publicKey: keys.publicKey, signingKey: signing.key, signingAlgorithm: signing.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value }))),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(caCertificate.getExtension(x509.SubjectKeyIdentifierExtension)
        ? [await x509.AuthorityKeyIdentifierExtension.create(caCertificate)] : []),
    ],
  });
  const certPem = certificate.toString('pem');
  // The CA's own key checks what it signed before it is handed out.
  if (!new NodeX509Certificate(certPem).verify(new NodeX509Certificate(ca.certPem).publicKey)) throw new Error('the issued certificate does not verify with the CA');
  return { certPem, keyPem: await keyPem(keys.privateKey), notAfter };
}
