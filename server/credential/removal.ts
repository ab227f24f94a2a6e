// What deleting something the webhook made comes to, decided from what is there now.
//
// The API server checks a bound token by the UIDs of its anchor and its ServiceAccount, not
// by their labels. Labels are what the webhook wrote, and whoever may patch Secrets or
// ServiceAccounts in that namespace (the holder of a leaked token, say) may remove them: a
// label check alone would then leave the token working while the sync reported it revoked.
// So the UID recorded when the object was made decides; the labels only tell tampering apart.
//
//   found under the name          recorded UID        what happens      reported as
//   nothing                       any                 nothing           absent: its tokens are dead
//   not of our kind (a Secret     any                 left alone        absent: ours never was, or is gone
//     of another type)
//   the recorded UID, labels ok   yes                 deleted           deleted
//   the recorded UID, labels off  yes                 deleted           tampered (a Warning)
//   another UID                   yes                 left alone        absent: ours was deleted
//   labels ok                     none (older status) deleted           deleted
//   labels off                    none (older status) left alone        unproven: never "revoked"

/** What a removal came to. `deleted`, `tampered` and `absent` leave nothing of ours; `unproven` may. */
export type Removal = 'deleted' | 'tampered' | 'absent' | 'unproven';

/** The object found under the recorded name, as the rule above needs it. */
export interface Found {
  uid: string;
  /** Of the kind the webhook makes (an anchor's Secret type, which cannot change after creation). */
  ofOurKind: boolean;
  /** Its labels (and, for an anchor, its owner) still say it was made for this request. */
  labelledOurs: boolean;
}

export type RemovalPlan =
  | { delete: true; uid: string; as: 'deleted' | 'tampered' }
  | { delete: false; as: 'absent' | 'unproven' };

/** What to do with `found` (undefined: nothing under that name) given the UID recorded when it was made. */
export function planRemoval(found: Found | undefined, recordedUid: string | undefined): RemovalPlan {
  if (!found || !found.ofOurKind) return { delete: false, as: 'absent' };
  if (recordedUid) {
    if (found.uid !== recordedUid) return { delete: false, as: 'absent' };
    return { delete: true, uid: found.uid, as: found.labelledOurs ? 'deleted' : 'tampered' };
  }
  return found.labelledOurs ? { delete: true, uid: found.uid, as: 'deleted' } : { delete: false, as: 'unproven' };
}

/** Nothing of ours is left under that name: the tokens bound to it no longer authenticate. */
export const isGone = (removal: Removal): boolean => removal !== 'unproven';
