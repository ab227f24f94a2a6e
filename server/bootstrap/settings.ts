// What the bootstrap (server/bootstrap.ts) makes, read from its environment: the chart's
// bootstrap Job (templates/bootstrap/job.yaml) writes these from the values, so nothing it
// renders is key material.
import { logLevels, type LogLevel } from '../log.js';

export interface TlsSettings {
  /** The CA Metacontroller trusts (caBundle): ca.crt, and tls.crt/tls.key that sign. */
  caSecret: string;
  /** The serving certificate the webhook presents (tls.crt, tls.key, ca.crt). */
  servingSecret: string;
  /** The serving certificate's names; the first is the host Metacontroller calls ({service}.{namespace}). */
  dnsNames: string[];
  caValidityDays: number;
  servingValidityDays: number;
  /** A serving certificate with less than this left is issued again, from the same CA. */
  renewBeforeDays: number;
}

export interface BootstrapSettings {
  namespace: string;
  /** The hook-token Secret; undefined: the installer makes it (hookToken.generate=false). */
  hookTokenSecret?: string;
  /** undefined: the certificates come from elsewhere (tls.source cert-manager or external). */
  tls?: TlsSettings;
  logLevel: LogLevel;
}

export class BootstrapSettingsError extends Error {
  override name = 'BootstrapSettingsError';
}

/** A Secret's name as the API server takes it: a DNS subdomain. */
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const maxDays = 36_500;

function name(env: NodeJS.ProcessEnv, variable: string): string | undefined {
  const value = env[variable];
  if (value === undefined || value === '') return undefined;
  if (value.length > 253 || !dnsSubdomain.test(value)) throw new BootstrapSettingsError(`${variable}=${value}: not a valid object name`);
  return value;
}

function days(env: NodeJS.ProcessEnv, variable: string, fallback: number): number {
  const text = env[variable];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > maxDays) throw new BootstrapSettingsError(`${variable}=${text}: expected a whole number of days from 0 to ${maxDays}`);
  return value;
}

/**
 * BOOTSTRAP_NAMESPACE (required); HOOK_TOKEN_SECRET; CA_SECRET, TLS_SECRET and TLS_DNS_NAMES
 * (comma-separated) together or none of them; CA_VALIDITY_DAYS, SERVING_VALIDITY_DAYS,
 * RENEW_BEFORE_DAYS (the chart's defaults); LOG_LEVEL.
 */
export function bootstrapSettingsFrom(env: NodeJS.ProcessEnv): BootstrapSettings {
  const namespace = name(env, 'BOOTSTRAP_NAMESPACE');
  if (!namespace) throw new BootstrapSettingsError('BOOTSTRAP_NAMESPACE is required: the namespace of the Secrets');
  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel;
  if (!logLevels.includes(logLevel)) throw new BootstrapSettingsError(`LOG_LEVEL=${env.LOG_LEVEL}: expected one of ${logLevels.join(', ')}`);
  const hookTokenSecret = name(env, 'HOOK_TOKEN_SECRET');
  const caSecret = name(env, 'CA_SECRET');
  const servingSecret = name(env, 'TLS_SECRET');
  const dnsNames = (env.TLS_DNS_NAMES ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  let tls: TlsSettings | undefined;
  if (caSecret || servingSecret || dnsNames.length > 0) {
    if (!caSecret || !servingSecret || dnsNames.length === 0) throw new BootstrapSettingsError('CA_SECRET, TLS_SECRET and TLS_DNS_NAMES go together: all three or none');
    if (caSecret === servingSecret) throw new BootstrapSettingsError('CA_SECRET and TLS_SECRET must differ');
    tls = {
      caSecret, servingSecret, dnsNames,
      caValidityDays: days(env, 'CA_VALIDITY_DAYS', 3650),
      servingValidityDays: days(env, 'SERVING_VALIDITY_DAYS', 365),
      renewBeforeDays: days(env, 'RENEW_BEFORE_DAYS', 120),
    };
    if (tls.servingValidityDays < 1 || tls.caValidityDays < 1) throw new BootstrapSettingsError('CA_VALIDITY_DAYS and SERVING_VALIDITY_DAYS must be at least 1');
  }
  if (!hookTokenSecret && !tls) throw new BootstrapSettingsError('nothing to make: set HOOK_TOKEN_SECRET, or CA_SECRET, TLS_SECRET and TLS_DNS_NAMES');
  return { namespace, ...(hookTokenSecret ? { hookTokenSecret } : {}), ...(tls ? { tls } : {}), logLevel };
}
