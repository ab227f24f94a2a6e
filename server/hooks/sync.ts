// The sync hook as plan, act, answer. The phases find facts in order (the grants, the input,
// then issuing) and the first that cannot go on says why; effectsOf names from those facts
// what to take back, act runs that once on every path, and answer builds the one answer.
// The decisions are the pure functions in credential/; docs/development.md draws the flow.
import type { Deadline } from '../kube/rest.js';
import type { SyncRequest } from '../metacontroller.js';
import { answer } from './answer.js';
import type { HookContext } from './context.js';
import { act, effectsOf } from './effects.js';
import { stopOf } from './error-outcomes.js';
import { hasEnded, type Ended, type Facts, type Issued } from './facts.js';
import { checkGrants } from './grants.js';
import { checkInputFreshness, checkSpec } from './input-checks.js';
import { issue } from './issue.js';
import type { SyncOutcome } from './outcome.js';
import { startRun, type SyncRun } from './run.js';

/** `deadline`: when the answer must be sent, so that Metacontroller still takes it. */
export async function sync(request: SyncRequest, context: HookContext, deadline: Deadline): Promise<SyncOutcome> {
  const run = startRun(request, context, deadline);
  const facts = await phases(run);
  const done = await act(run, effectsOf(run, facts), context.clusters);
  return answer(run, facts, done);
}

/** What the phases find, in order; a failed call is read into a stop by the error table (error-outcomes.ts). */
async function phases(run: SyncRun): Promise<Facts> {
  const ended = await untilEnded(run);
  if (!hasEnded(ended)) return { kind: 'issued', issued: ended };
  return ended.ended.kind === 'failedCall' ? { kind: 'stopped', stop: stopOf(ended.ended.call) } : ended.ended;
}

async function untilEnded(run: SyncRun): Promise<Issued | Ended> {
  // Tenancy before anything else may end the sync: no other early end keeps a token alive past a withdrawal.
  const refused = await checkGrants(run);
  if (refused) return refused;
  const freshness = await checkInputFreshness(run);
  if (hasEnded(freshness)) return freshness;
  const spec = await checkSpec(run);
  if (hasEnded(spec)) return spec;
  return issue(run, spec, freshness);
}
