// Hook authentication by client certificate (Metacontroller's clientTLS, v4.16+): the TLS
// handshake asked for one and checked its chain against TLS_CLIENT_CA_FILE. A chain is not
// enough: the serving certificate comes from the same CA, and a certificate without an
// extended key usage counts as good for any purpose, so a stolen serving key would pass as
// Metacontroller. The certificate must also say it is for client authentication and name
// the expected subject. Probes connect without one.
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { CallRefusal } from './json-answer.js';

/** id-kp-clientAuth (RFC 5280, 4.2.1.12). */
export const clientAuthOid = '1.3.6.1.5.5.7.3.2';

/** What the handshake left on the socket: `TLSSocket.authorized` and `getPeerCertificate()`'s fields. */
export interface PresentedCertificate {
  /** The chain reached a CA in TLS_CLIENT_CA_FILE and no certificate in it is expired. */
  chainVerified: boolean;
  /** OIDs of the extended key usage extension; absent when the certificate has none. */
  extKeyUsage?: readonly string[];
  /** Subject common name; Node gives an array when the subject repeats CN. */
  commonName?: string | readonly string[];
}

export type ClientCertificateVerdict =
  | { accepted: true }
  | { accepted: false; reason: 'no certificate from the CA' | 'not for client authentication' | 'unexpected subject' };

export function judgeClientCertificate(presented: PresentedCertificate, expectedCommonName: string): ClientCertificateVerdict {
  if (!presented.chainVerified) return { accepted: false, reason: 'no certificate from the CA' };
  // anyExtendedKeyUsage and a missing extension are refused too: only an explicit clientAuth counts.
  if (!presented.extKeyUsage?.includes(clientAuthOid)) return { accepted: false, reason: 'not for client authentication' };
  // A subject with two CNs is ambiguous: which one a verifier reads differs between libraries.
  if (presented.commonName !== expectedCommonName) return { accepted: false, reason: 'unexpected subject' };
  return { accepted: true };
}

/** The socket's view, as `judgeClientCertificate` takes it. */
export function presentedCertificate(socket: TLSSocket): PresentedCertificate {
  // Without a certificate, getPeerCertificate() returns an empty object.
  const peer: Partial<PeerCertificate> = socket.getPeerCertificate();
  return {
    chainVerified: socket.authorized === true,
    ...(peer.ext_key_usage ? { extKeyUsage: peer.ext_key_usage } : {}),
    ...(peer.subject?.CN !== undefined ? { commonName: peer.subject.CN } : {}),
  };
}

/** The refusal of a hook call over a connection without the expected certificate; undefined when it has one. */
export function clientCertificateRefusal(expectedCommonName: string, socket: Socket): CallRefusal | undefined {
  // A plain-HTTP socket has no getPeerCertificate: nothing was presented.
  const verdict = typeof (socket as Partial<TLSSocket>).getPeerCertificate === 'function'
    ? judgeClientCertificate(presentedCertificate(socket as TLSSocket), expectedCommonName)
    : { accepted: false, reason: 'no certificate from the CA' } as const;
  if (verdict.accepted) return undefined;
  return {
    status: 401,
    error: `a client certificate signed by the configured CA, for client authentication, with subject CN=${expectedCommonName} is required (${verdict.reason})`,
  };
}
