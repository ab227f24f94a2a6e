// What the bootstrap must do, from the Secrets as they are and the clock: one pure rule.
// The hook token and the CA are made once and never written again (Metacontroller reads both
// only when it builds the controller: a new one would break every hook until it restarts);
// the serving certificate is issued again from the same CA when it nears its end, names other
// hosts, or is not that CA's. Secrets a 0.3 release rendered are marked to survive the
// upgrade that drops them from the chart.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { BootstrapSettings, TlsSettings } from './settings.js';

/** A Secret as read, its data decoded (PEM, the token). */
export interface ObservedSecret {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  data: Record<string, string>;
}

export interface ObservedSecrets {
  hookToken?: ObservedSecret;
  ca?: ObservedSecret;
  serving?: ObservedSecret;
}

/** Helm's annotation that makes an upgrade or uninstall leave an object it no longer renders. */
export const helmResourcePolicy = 'helm.sh/resource-policy';
/** The release an object belongs to, written by Helm on what a chart rendered. */
export const helmReleaseName = 'meta.helm.sh/release-name';
/** When the serving certificate expires (Unix seconds) and the names it holds: for people, as in 0.3. */
export const notAfterAnnotation = 'svc.dpu.nvidia.com/not-after';
export const dnsNamesAnnotation = 'svc.dpu.nvidia.com/dns-names';

export const servingReasons = {
  missing: 'there is no serving certificate',
  newCa: 'the CA is new',
  unreadable: 'the serving certificate or its key cannot be read, or they do not match',
  otherCa: 'the serving certificate was not issued by the CA',
  names: 'the serving certificate names other hosts',
  expiring: 'the serving certificate is within renewBeforeDays of its end',
} as const;
export type ServingReason = (typeof servingReasons)[keyof typeof servingReasons];

export type BootstrapAction =
  /** Marks a Secret a Helm release rendered (0.3) helm.sh/resource-policy=keep before that release's upgrade deletes it. */
  | { kind: 'keep-through-helm-upgrade'; secret: string }
  | { kind: 'create-hook-token'; secret: string }
  | { kind: 'create-ca'; secret: string }
  /** `replace`: the Secret exists and is updated; otherwise created. */
  | { kind: 'issue-serving'; secret: string; why: ServingReason; replace: boolean };

/** The plan, or why nothing may be done: a Secret of that name exists but cannot be used, and is never overwritten. */
export type BootstrapPlan = { actions: BootstrapAction[] } | { refused: string };

const msPerDay = 86_400_000;

/**
 * The shortest hook token the bootstrap accepts in a Secret it did not make: a known or
 * guessable token lets whoever holds it call the hooks as Metacontroller. Its own are 64.
 */
export const minHookTokenLength = 32;

/** The CA's certificate, key and end when the Secret holds a usable pair, not expired at `now`; otherwise why not. */
export function usableCa(secret: ObservedSecret, now: Date): { certPem: string; keyPem: string; notAfter: Date } | { unusable: string } {
  const certPem = secret.data['ca.crt'] ?? secret.data['tls.crt'];
  const keyPem = secret.data['tls.key'];
  if (!certPem || !keyPem) return { unusable: 'it has no ca.crt and tls.key' };
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
    if (!certificate.ca) return { unusable: 'its ca.crt is not a CA certificate' };
    if (!certificate.checkPrivateKey(createPrivateKey(keyPem))) return { unusable: 'its tls.key is not the key of its ca.crt' };
  } catch {
    return { unusable: 'its ca.crt or tls.key cannot be read' };
  }
  const notAfter = new Date(certificate.validTo);
  // A serving certificate it signed would fail every hook call: Metacontroller checks the chain's dates.
  if (!(now < notAfter)) return { unusable: `its CA certificate expired on ${notAfter.toISOString()}` };
  return { certPem, keyPem, notAfter };
}

/**
 * Why a hook-token or CA Secret that exists deserves a look, or undefined: one the bootstrap did
 * not make (its managed-by label) and no Helm release rendered was written by someone else,
 * and the bootstrap trusts it as it is (a kustomize install moved to the chart, or whoever may
 * write Secrets in this namespace: docs/security.md).
 */
export function foreignSecretNotice(secret: ObservedSecret | undefined, madeBy: Record<string, string>): string | undefined {
  if (!secret) return undefined;
  const ours = Object.entries(madeBy).every(([label, value]) => secret.labels[label] === value);
  if (ours || secret.annotations[helmReleaseName] !== undefined) return undefined;
  return `Secret ${secret.name} was not made by this bootstrap nor rendered by a Helm release: it is used as it is; make sure your installer made it`;
}

const dnsNamesOf = (certificate: X509Certificate) => (certificate.subjectAltName ?? '').split(', ')
  .filter((entry) => entry.startsWith('DNS:')).map((entry) => entry.slice('DNS:'.length));

const sameNames = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((name, index) => name === [...b].sort()[index]);

/** Why the serving certificate must be issued again, or undefined: it stays. */
export function servingRenewal(serving: ObservedSecret, caCertPem: string, tls: TlsSettings, now: Date): ServingReason | undefined {
  let certificate: X509Certificate;
  let ca: X509Certificate;
  try {
    certificate = new X509Certificate(serving.data['tls.crt'] ?? '');
    ca = new X509Certificate(caCertPem);
    if (!certificate.checkPrivateKey(createPrivateKey(serving.data['tls.key'] ?? ''))) return servingReasons.unreadable;
  } catch {
    return servingReasons.unreadable;
  }
  if (!certificate.checkIssued(ca) || !certificate.verify(ca.publicKey) || serving.data['ca.crt'] !== caCertPem) return servingReasons.otherCa;
  if (!sameNames(dnsNamesOf(certificate), tls.dnsNames)) return servingReasons.names;
  const renewAtMs = Date.parse(certificate.validTo) - tls.renewBeforeDays * msPerDay;
  if (!(now.getTime() < renewAtMs)) return servingReasons.expiring;
  return undefined;
}

const renderedByHelm = (secret: ObservedSecret | undefined): secret is ObservedSecret =>
  secret !== undefined && secret.annotations[helmReleaseName] !== undefined && secret.annotations[helmResourcePolicy] !== 'keep';

export function planBootstrap(observed: ObservedSecrets, settings: BootstrapSettings, now: Date): BootstrapPlan {
  const actions: BootstrapAction[] = [];
  for (const secret of [observed.hookToken, observed.ca, observed.serving]) {
    if (renderedByHelm(secret)) actions.push({ kind: 'keep-through-helm-upgrade', secret: secret.name });
  }

  if (settings.hookTokenSecret) {
    if (!observed.hookToken) actions.push({ kind: 'create-hook-token', secret: settings.hookTokenSecret });
    else if ((observed.hookToken.data.token?.trim().length ?? 0) < minHookTokenLength) {
      return { refused: `Secret ${settings.hookTokenSecret} exists without a token of at least ${minHookTokenLength} characters: it is not overwritten. Write a longer token into it, or delete it to have one made` };
    }
  }

  const tls = settings.tls;
  if (tls) {
    let caCertPem: string | undefined;
    if (observed.ca) {
      const ca = usableCa(observed.ca, now);
      if ('unusable' in ca) return { refused: `Secret ${tls.caSecret} exists but ${ca.unusable}: it is not overwritten. Fix it, or delete it (and restart Metacontroller afterwards) to have a new CA made` };
      caCertPem = ca.certPem;
    } else {
      actions.push({ kind: 'create-ca', secret: tls.caSecret });
    }
    const replace = observed.serving !== undefined;
    const why = !observed.serving ? servingReasons.missing
      : caCertPem === undefined ? servingReasons.newCa
        : servingRenewal(observed.serving, caCertPem, tls, now);
    if (why) actions.push({ kind: 'issue-serving', secret: tls.servingSecret, why, replace });
  }
  return { actions };
}
