// What a sync takes back, as an explicit list: the phases only find facts, effectsOf names from
// them what to delete and which cached clusters to forget, and act runs that list once, on every
// path (a refusal, a stop, a failed call, an issued credential alike). Each deletion is made in
// the cluster where the object was made, by the UID recorded then (leftovers.ts); what fails
// stays on record and is tried again at the next sync.
import type { ServiceAccountEntry } from '../api.js';
import { anchorsToDelete, type AnchorAction, type AnchorEntry } from '../credential/token-anchors.js';
import type { CallTarget } from './bound-clusters.js';
import type { ClusterAccess } from './cluster-access.js';
import type { Facts, Stop } from './facts.js';
import { deleteAnchors, deleteLeftovers, type Cleanup, type Kept, type Revocation } from './leftovers.js';
import { deleterOf, type SyncRun } from './run.js';

/** Why anchors are deleted: everything on a refusal, a forced rotation's held token, the swept, the replaced. */
export type AnchorPurpose = 'revokeAll' | 'revokeHeld' | 'sweep' | 'replaced';

export type Effect =
  /** Drop the cached client of a DPUCluster ("namespace/name"): gone, or its credentials refused. */
  | { kind: 'forget'; cluster: string }
  /** Delete the ServiceAccounts of `ledger`, but the one the current token belongs to (`keep`). */
  | { kind: 'deleteServiceAccounts'; ledger: ServiceAccountEntry[]; keep?: Kept }
  /** Delete the anchors `choose` picks from those on record by then (`target`: where the current ones live). */
  | { kind: 'deleteAnchors'; purpose: AnchorPurpose; choose: (onRecord: AnchorEntry[]) => { entry: AnchorEntry; action: AnchorAction }[];
    target?: CallTarget };

/** The effects of a sync, and the anchors on record before them. */
export interface Effects {
  anchors: AnchorEntry[];
  list: Effect[];
}

/** What the effects did: the anchors still on record after them, and each deletion's result. */
export interface Done {
  anchors: AnchorEntry[];
  cleanup?: Cleanup;
  revocations: Partial<Record<AnchorPurpose, Revocation>>;
}

const revokeEach = (entries: AnchorEntry[]) => entries.map((entry) => ({ entry, action: 'revoke' as const }));

/** What a stop takes back: tokens no Secret may hold any more, and a forced rotation's held token. */
function stopEffects(run: SyncRun, stop: Stop): Effect[] {
  const held = stop.revokeHeld;
  return [
    ...(stop.forget !== undefined ? [{ kind: 'forget' as const, cluster: stop.forget }] : []),
    ...(held ? [{ kind: 'deleteAnchors' as const, purpose: 'revokeHeld' as const,
      choose: (onRecord: AnchorEntry[]) => revokeEach(onRecord.filter((entry) => held.entries.includes(entry))) }] : []),
    ...(stop.sweep ? [{ kind: 'deleteAnchors' as const, purpose: 'sweep' as const,
      choose: (onRecord: AnchorEntry[]) => anchorsToDelete(onRecord, undefined, undefined, run.limits, run.now) }] : []),
  ];
}

/** The effects the facts call for. Pure: nothing is called until act. */
export function effectsOf(run: SyncRun, facts: Facts): Effects {
  const { holdings } = run;
  switch (facts.kind) {
    case 'behind':
    case 'awaiting':
      return { anchors: holdings.anchors, list: [] };
    case 'refused':
      // Every anchor (revoking its token) and every ServiceAccount this request made (revoking any token bound
      // to it, anchors lost from a stale status and 0.1.0's unbound ones included).
      return { anchors: holdings.anchors, list: [
        { kind: 'deleteAnchors', purpose: 'revokeAll', choose: revokeEach },
        { kind: 'deleteServiceAccounts', ledger: holdings.serviceAccounts },
      ] };
    case 'stopped':
      return { anchors: facts.stop.tokenAnchors ?? holdings.anchors, list: stopEffects(run, facts.stop) };
    case 'issued': {
      // After the new credential exists, so a failure never leaves the request without one.
      const { account, target, anchors, replaced } = facts.issued;
      return { anchors, list: [
        { kind: 'deleteServiceAccounts', ledger: account.ledger, keep: { current: account.current, target } },
        { kind: 'deleteAnchors', purpose: 'replaced', choose: (onRecord) => replaced.filter(({ entry }) => onRecord.includes(entry)), target },
      ] };
    }
  }
}

/**
 * Runs the effects in order, once; then forgets the DPUClusters the deletions found gone. Besides
 * these, a sync deletes only the anchor of a token minted and never seen, just before the next
 * mint (mint-limit.ts), so that at most one such token exists.
 */
export async function act(run: SyncRun, effects: Effects, clusters: Pick<ClusterAccess, 'forget'>): Promise<Done> {
  const done: Done = { anchors: effects.anchors, revocations: {} };
  const deleter = deleterOf(run);
  for (const effect of effects.list) {
    if (effect.kind === 'forget') clusters.forget(effect.cluster);
    if (effect.kind === 'deleteServiceAccounts') done.cleanup = await deleteLeftovers(effect.ledger, effect.keep, deleter);
    if (effect.kind === 'deleteAnchors') {
      const revocation = await deleteAnchors(effect.choose(done.anchors), done.anchors, effect.target, deleter);
      done.anchors = revocation.anchors;
      done.revocations[effect.purpose] = revocation;
    }
  }
  forgetGone(clusters, [...done.cleanup?.forget ?? [], ...Object.values(done.revocations).flatMap((revocation) => revocation.forget)]);
  return done;
}

/** Forgets the cached clients of the DPUClusters a deletion found gone ("namespace/name"), each once. */
export function forgetGone(clusters: Pick<ClusterAccess, 'forget'>, gone: string[]): void {
  for (const cluster of new Set(gone)) clusters.forget(cluster);
}
