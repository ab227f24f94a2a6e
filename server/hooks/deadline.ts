// When a hook must have answered. Metacontroller gives each call the CompositeController's
// `webhook.timeout` (10 s by default) and drops an answer that comes later, with whatever
// token it carried. The request names the CompositeController, so the timeout is read from it.
import { isRecord } from '../api.js';
import { parseDurationMs } from '../credential/duration.js';
import { Deadline } from '../kube/rest.js';
import type { SyncRequest } from '../metacontroller.js';

/** Metacontroller's webhook timeout when the CompositeController sets none. */
export const defaultHookTimeoutMs = 10_000;

/** What the answer needs beyond the hook's own work: the network, and Metacontroller reading it. */
export const answerMarginMs = (timeoutMs: number) => Math.max(1_000, timeoutMs / 10);

/** `webhook.timeout` of this hook in the CompositeController the request carries; the default otherwise. */
export function hookTimeoutMs(controller: SyncRequest['controller'], hook: string): number {
  const spec = isRecord(controller) ? controller.spec : undefined;
  const hooks = isRecord(spec) ? spec.hooks : undefined;
  const entry = isRecord(hooks) ? hooks[hook] : undefined;
  const webhook = isRecord(entry) ? entry.webhook : undefined;
  const text = isRecord(webhook) ? webhook.timeout : undefined;
  const timeoutMs = typeof text === 'string' ? parseDurationMs(text) : undefined;
  return timeoutMs && timeoutMs > 0 ? timeoutMs : defaultHookTimeoutMs;
}

export function hookDeadline(controller: SyncRequest['controller'], hook: string, receivedAtMs: number): Deadline {
  const timeoutMs = hookTimeoutMs(controller, hook);
  return new Deadline(receivedAtMs + timeoutMs - answerMarginMs(timeoutMs));
}
