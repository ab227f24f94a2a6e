// What the admission-policy tests ask of a call: did the API server refuse it, and was it that policy.
import { expect } from 'chai';
import { KubeApiError } from '../server/kube/rest.js';

/** The refusal of a call, or undefined when it succeeded. */
export async function refusalOf(call: Promise<unknown>): Promise<KubeApiError | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    if (error instanceof KubeApiError) return error;
    throw error;
  }
}

/** A refusal by `policy` (not by RBAC, which would not name it), with its message. */
export function expectDeniedBy(policy: string, refusal: KubeApiError | undefined, message: string): void {
  expect(refusal, 'the call succeeded').to.be.instanceOf(KubeApiError);
  expect(refusal!.statusCode).to.equal(403);
  expect(refusal!.message).to.contain(`ValidatingAdmissionPolicy '${policy}'`).and.to.contain(message);
}
