// Tenancy at every sync, decided first: for everything the request holds (the
// ServiceAccounts and token anchors its status records, the tokens in its observed Secrets)
// and everything its spec asks for. A scope without its grant (or in a protected
// namespace) ends the sync with a refusal that takes back what was issued, so no other
// early answer (an invalid spec, a stale input) can keep a token alive past a withdrawal.
import { failed, reasons } from '../credential/status.js';
import {
  grantsNeeded, grantVerb, protectedRefusal, referenceKey, refusalMessage, requesterOf, scopeOfRecord, scopeOfSpec, type Refusal, type Scope,
} from '../credential/tenancy.js';
import type { CallClusters } from './bound-clusters.js';
import { failedCall, type Ended } from './facts.js';
import type { Holdings, SyncRun } from './run.js';

/** Every scope of a request: what it holds, and what a valid spec asks for. */
export function scopesOf(run: Pick<SyncRun, 'requestRef' | 'holdings' | 'validation'>): Scope[] {
  return [...scopesHeld(run.requestRef.namespace, run.holdings), ...(run.validation.valid ? [scopeOfSpec(run.validation.spec)] : [])];
}

const scopesHeld = (requestNamespace: string, holdings: Holdings): Scope[] => [...holdings.serviceAccounts, ...holdings.anchors]
  .map((entry) => scopeOfRecord(requestNamespace, entry.serviceAccount, entry.targetCluster));

/** The first refusal among `scopes`: protected namespaces first (no call), then each grant asked once. */
export async function firstRefusal(requestNamespace: string, scopes: Scope[], host: CallClusters['host'],
  protectedNamespaces: readonly string[]): Promise<Refusal | undefined> {
  for (const scope of scopes) {
    const refusal = protectedRefusal(scope, protectedNamespaces);
    if (refusal) return refusal;
  }
  const requester = requesterOf(requestNamespace);
  const asked = new Set<string>();
  for (const reference of scopes.flatMap(grantsNeeded)) {
    const key = referenceKey(reference);
    if (asked.has(key)) continue;
    asked.add(key);
    if (!await host.isAllowed(requester, grantVerb, reference)) return { kind: 'ungranted', reference };
  }
  return undefined;
}

/**
 * The grants phase: a refusal takes back everything issued (effects.ts: every anchor, then every
 * ServiceAccount the request made); undefined: all granted. A check that fails changes nothing.
 */
export async function checkGrants(run: SyncRun): Promise<Ended | undefined> {
  const namespace = run.requestRef.namespace;
  try {
    const refusal = await firstRefusal(namespace, scopesOf(run), run.clusters.host, run.policy.protectedNamespaces);
    return refusal ? { ended: { kind: 'refused', refused: failed(reasons.referenceNotPermitted, refusalMessage(namespace, refusal)) } } : undefined;
  } catch (error) {
    return failedCall({ error, phase: 'grants', sweep: false });
  }
}
