// One sync call as the phases read it: the request as observed and what it holds, this call's
// clock and policy, and its clusters with the deadline bound (bound-clusters.ts). Made once,
// read by every phase, never called back into.
import type { DpuServiceCredentialRequest, ServiceAccountEntry } from '../api.js';
import { requestRefOf, type NamespacedName } from '../credential/names.js';
import type { Policy } from '../credential/policy.js';
import { recordedServiceAccounts, sameServiceAccount } from '../credential/service-account-ledger.js';
import { rfc3339 } from '../credential/time.js';
import { anchorEntryOf, anchorsOf, type AnchorEntry, type AnchorLimits } from '../credential/token-anchors.js';
import type { TokenRecord } from '../credential/token.js';
import { validateRequest, type Validation } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import { secretChildKey, type SyncRequest } from '../metacontroller.js';
import { bindDeadline, type CallClusters } from './bound-clusters.js';
import { observe, type Observed } from './children.js';
import { policyOf, type HookContext } from './context.js';
import type { Deleter } from './leftovers.js';

/** What a request holds: its ServiceAccounts and the anchors of its tokens, as recorded and as observed. */
export interface Holdings {
  serviceAccounts: ServiceAccountEntry[];
  anchors: AnchorEntry[];
}

/** What every phase reads. */
export interface SyncRun {
  request: SyncRequest;
  parent: DpuServiceCredentialRequest;
  requestRef: NamespacedName;
  observed: Observed;
  validation: Validation;
  /** What the request holds: its status's records and the observed Secrets' tokens. */
  holdings: Holdings;
  policy: Policy;
  limits: AnchorLimits;
  now: Date;
  /** No phase forgets a cached cluster: only the effects do (effects.ts). */
  clusters: CallClusters;
}

export function startRun(request: SyncRequest, context: HookContext, deadline: Deadline): SyncRun {
  const parent = request.parent;
  const policy = policyOf(context);
  const validation = validateRequest(parent);
  const observed = observe(Object.values(request.children?.[secretChildKey] ?? {}), parent, validation.valid ? validation.spec.secret.name : undefined);
  return {
    request,
    parent,
    requestRef: requestRefOf(parent),
    observed,
    validation,
    holdings: holdingsOf(parent, observed.withTokens.map(({ record, token }) => ({ record, anchor: token.anchor }))),
    policy,
    limits: { renewalGraceMs: policy.renewalGraceMs, maxLifetimeMs: policy.maxTokenDurationSeconds * 1_000 },
    now: context.now(),
    clusters: bindDeadline(context.clusters, deadline),
  };
}

/** Who deletes for this run (leftovers.ts). */
export const deleterOf = (run: SyncRun): Deleter =>
  ({ clusters: run.clusters, request: run.requestRef, protectedNamespaces: run.policy.protectedNamespaces, now: run.now });

/**
 * The status's records, plus what the observed Secrets' tokens show: Metacontroller's
 * cached parent may lack the ServiceAccount and anchor of the token minted last. An entry
 * learnt from a token gets no UID: a token's claims are read without checking its signature,
 * and whoever may edit the Secret could name another's object there; only UIDs from the API
 * server's own answers to the webhook (status) delete whatever the labels say (removal.ts).
 */
export function holdingsOf(parent: DpuServiceCredentialRequest, observedTokens: { record: TokenRecord; anchor?: string | undefined }[]): Holdings {
  const serviceAccounts = recordedServiceAccounts(parent.status);
  const anchors = anchorsOf(parent.status);
  for (const { record, anchor } of observedTokens) {
    const entry: ServiceAccountEntry = {
      serviceAccount: record.serviceAccount,
      ...(record.targetCluster ? { targetCluster: record.targetCluster, targetClusterUID: record.targetClusterUid } : {}),
    };
    if (!serviceAccounts.some((known) => sameServiceAccount(known, entry))) serviceAccounts.push(entry);
    if (anchor && !anchors.some((known) => known.anchor === anchor && sameServiceAccount(known, entry))) {
      anchors.push(anchorEntryOf(entry, { name: anchor }, record.rotation, rfc3339(record.expiresAt)));
    }
  }
  return { serviceAccounts, anchors };
}
