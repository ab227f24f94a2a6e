// ensureServiceAccount against a target API server that answers a create with no object (broken or
// hostile): a clear error after one read and one create, never a loop of creates until the deadline.
// The API server's side is a recorded stand-in here; the real one is in service-account-adoption.e2e.spec.ts.
import { expect } from 'chai';
import { KubeApiError, type ApiCaller } from '../../server/kube/rest.js';
import { ensureServiceAccount } from '../../server/kube/service-accounts.js';

function answering(post: unknown): { client: ApiCaller; calls: string[] } {
  const calls: string[] = [];
  const client: ApiCaller = {
    server: 'https://target.invalid',
    async request<T>(method: string, path: string): Promise<T> {
      calls.push(`${method} ${path}`);
      if (method === 'GET') throw new KubeApiError(404, 'NotFound', 'not found');
      return post as T;
    },
  };
  return { client, calls };
}

describe('ensureServiceAccount', function () {
  for (const [what, post] of [['an empty answer', undefined], ['null', null], ['an object without a UID', { metadata: {} }]] as const) {
    it(`refuses a create answered with ${what}: InvalidResponse after one read and one create`, async function () {
      const { client, calls } = answering(post);
      const error = await ensureServiceAccount(client, { namespace: 'default', name: 'sa' }, { namespace: 'default', name: 'request' })
        .then(() => undefined, (failure: unknown) => failure);
      expect(error).to.be.instanceOf(KubeApiError);
      expect((error as KubeApiError).reason).to.equal('InvalidResponse');
      expect(calls).to.deep.equal(['GET /api/v1/namespaces/default/serviceaccounts/sa?resourceVersion=0', 'POST /api/v1/namespaces/default/serviceaccounts']);
    });
  }
});
