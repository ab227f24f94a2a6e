// The bootstrap's loop: read the Secrets, plan (plan.ts), act, and again while another
// writer (a second Job, an installer) got there first, until the plan is empty. Nothing is
// overwritten that was not read: creates fail on an existing Secret, updates on a changed one.
import type { Logger } from '../log.js';
import { createSecret, isRaceLost, readSecret, updateSecret, type ReadSecret } from '../kube/bootstrap-secrets.js';
import type { ApiCaller } from '../kube/rest.js';
import { createCa, issueServingCertificate, newHookToken } from './certificates.js';
import {
  dnsNamesAnnotation, foreignSecretNotice, helmResourcePolicy, notAfterAnnotation, planBootstrap, usableCa, type BootstrapAction, type ObservedSecrets,
} from './plan.js';
import type { BootstrapSettings, TlsSettings } from './settings.js';

/** Plans in a row before giving up: each extra one follows a race lost to another writer. */
export const maxBootstrapRounds = 5;

/** The labels of the Secrets the bootstrap makes (the chart's app.kubernetes.io/name, and who made them). */
export interface BootstrapLabels {
  [label: string]: string;
}

export class BootstrapRefused extends Error {
  override name = 'BootstrapRefused';
}

export interface BootstrapReport {
  /** What was done, in order (names and reasons, never data). */
  done: string[];
}

interface Read {
  hookToken?: ReadSecret;
  ca?: ReadSecret;
  serving?: ReadSecret;
}

async function readAll(client: ApiCaller, settings: BootstrapSettings): Promise<Read> {
  const read = (name: string | undefined) => name ? readSecret(client, settings.namespace, name) : Promise.resolve(undefined);
  const [hookToken, ca, serving] = await Promise.all([read(settings.hookTokenSecret), read(settings.tls?.caSecret), read(settings.tls?.servingSecret)]);
  return { ...(hookToken ? { hookToken } : {}), ...(ca ? { ca } : {}), ...(serving ? { serving } : {}) };
}

const observedOf = (read: Read): ObservedSecrets => ({
  ...(read.hookToken ? { hookToken: read.hookToken.observed } : {}),
  ...(read.ca ? { ca: read.ca.observed } : {}),
  ...(read.serving ? { serving: read.serving.observed } : {}),
});

/** Makes what is missing and renews what is due; returns what it did. Throws BootstrapRefused for a Secret it will not overwrite. */
export async function runBootstrap(client: ApiCaller, settings: BootstrapSettings, labels: BootstrapLabels,
  options: { now?: () => Date; log?: Logger } = {}): Promise<BootstrapReport> {
  const now = options.now ?? (() => new Date());
  const done: string[] = [];
  for (let round = 1; round <= maxBootstrapRounds; round++) {
    const read = await readAll(client, settings);
    if (round === 1) warnOfForeignSecrets(read, labels, options.log);
    const plan = planBootstrap(observedOf(read), settings, now());
    if ('refused' in plan) throw new BootstrapRefused(plan.refused);
    if (plan.actions.length === 0) return { done };
    try {
      // The CA made in this round signs the serving certificate of this round.
      let madeCa: { certPem: string; keyPem: string } | undefined;
      for (const action of plan.actions) {
        madeCa = await act(client, settings, labels, read, action, madeCa, now()) ?? madeCa;
        const line = describe(action);
        done.push(line);
        options.log?.info(line, { secret: action.secret });
      }
      return { done };
    } catch (error) {
      if (!isRaceLost(error)) throw error;
      options.log?.info('another writer changed a Secret meanwhile: reading them again', { round });
    }
  }
  throw new Error(`the Secrets kept changing under the bootstrap for ${maxBootstrapRounds} rounds`);
}

function warnOfForeignSecrets(read: Read, madeBy: BootstrapLabels, log: Logger | undefined): void {
  for (const secret of [read.hookToken, read.ca]) {
    const notice = foreignSecretNotice(secret?.observed, madeBy);
    if (notice) log?.warn(notice, { secret: secret!.observed.name });
  }
}

function describe(action: BootstrapAction): string {
  switch (action.kind) {
    case 'keep-through-helm-upgrade': return `marked ${action.secret} ${helmResourcePolicy}=keep: the upgrade from a chart that rendered it leaves it`;
    case 'create-hook-token': return `made the hook token ${action.secret}`;
    case 'create-ca': return `made the CA ${action.secret}`;
    case 'issue-serving': return `issued the serving certificate ${action.secret}: ${action.why}`;
  }
}

/** One action; a CA it made is returned for the serving certificate after it. */
async function act(client: ApiCaller, settings: BootstrapSettings, labels: BootstrapLabels, read: Read, action: BootstrapAction,
  madeCa: { certPem: string; keyPem: string } | undefined, now: Date): Promise<{ certPem: string; keyPem: string } | undefined> {
  const { namespace } = settings;
  switch (action.kind) {
    case 'keep-through-helm-upgrade': {
      const secret = [read.hookToken, read.ca, read.serving].find((candidate) => candidate?.observed.name === action.secret)!;
      // What the next update of this Secret starts from is what this one wrote.
      replaceRead(read, await updateSecret(client, namespace, secret, { annotations: { [helmResourcePolicy]: 'keep' } }));
      return undefined;
    }
    case 'create-hook-token':
      await createSecret(client, namespace, { name: action.secret, type: 'Opaque', labels, data: { token: newHookToken() } });
      return undefined;
    case 'create-ca': {
      const tls = settings.tls as TlsSettings;
      const ca = await createCa(tls.caSecret, tls.caValidityDays, now);
      await createSecret(client, namespace, {
        name: action.secret, type: 'kubernetes.io/tls', labels, data: { 'ca.crt': ca.certPem, 'tls.crt': ca.certPem, 'tls.key': ca.keyPem },
      });
      return ca;
    }
    case 'issue-serving': {
      const tls = settings.tls as TlsSettings;
      const ca = madeCa ?? (read.ca ? usableCa(read.ca.observed, now) : undefined);
      if (!ca || 'unusable' in ca) throw new Error(`no usable CA in ${tls.caSecret} to issue ${action.secret} from`);
      const serving = await issueServingCertificate(ca, tls.dnsNames, tls.servingValidityDays, now);
      const data = { 'ca.crt': ca.certPem, 'tls.crt': serving.certPem, 'tls.key': serving.keyPem };
      const annotations = {
        [notAfterAnnotation]: String(Math.floor(serving.notAfter.getTime() / 1000)),
        [dnsNamesAnnotation]: tls.dnsNames.join(','),
      };
      if (action.replace && read.serving) await updateSecret(client, namespace, read.serving, { annotations, data });
      else await createSecret(client, namespace, { name: action.secret, type: 'kubernetes.io/tls', labels, annotations, data });
      return undefined;
    }
  }
}

function replaceRead(read: Read, again: ReadSecret): void {
  for (const key of ['hookToken', 'ca', 'serving'] as const) {
    if (read[key]?.observed.name === again.observed.name) read[key] = again;
  }
}
