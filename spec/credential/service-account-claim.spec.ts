import { expect } from 'chai';
import { managedLabels } from '../../server/credential/names.js';
import { adoptServiceAccountAnnotation, claimServiceAccount } from '../../server/credential/service-account-claim.js';

const request = { namespace: 'dpucr-test-ns', name: 'dpu-01-credential-request' };
const consent = (value: string) => ({ [adoptServiceAccountAnnotation]: value });

describe('service-account-claim: whose a ServiceAccount found under the requested name is', function () {
  it('is the request\'s own when its managed labels name it, whatever else it says', function () {
    expect(claimServiceAccount({ uid: 'u1', labels: managedLabels(request.namespace, request.name) }, request, undefined))
      .to.deep.equal({ kind: 'own' });
    expect(claimServiceAccount({ uid: 'u1', labels: managedLabels(request.namespace, request.name), annotations: consent('other/x') },
      request, 'u0')).to.deep.equal({ kind: 'own' });
  });

  it('takes back the one of the recorded UID whose labels were stripped or changed (tampering)', function () {
    expect(claimServiceAccount({ uid: 'u1' }, request, 'u1')).to.deep.equal({ kind: 'reclaim' });
    expect(claimServiceAccount({ uid: 'u1', labels: managedLabels('other', 'x') }, request, 'u1')).to.deep.equal({ kind: 'reclaim' });
  });

  it('adopts a label-less one whose annotation names the request as "namespace/name"', function () {
    expect(claimServiceAccount({ uid: 'u1', labels: { app: 'ovn' }, annotations: consent(`${request.namespace}/${request.name}`) }, request, undefined))
      .to.deep.equal({ kind: 'adopt' });
    // A recorded UID of an earlier ServiceAccount of that name does not stand in the way of the consent.
    expect(claimServiceAccount({ uid: 'u2', annotations: consent(`${request.namespace}/${request.name}`) }, request, 'u1'))
      .to.deep.equal({ kind: 'adopt' });
  });

  it('refuses a label-less one without consent: DPF\'s, or anyone\'s', function () {
    expect(claimServiceAccount({ uid: 'u1' }, request, undefined)).to.deep.equal({ kind: 'refused', why: 'noConsent' });
    expect(claimServiceAccount({ uid: 'u1' }, request, 'u0')).to.deep.equal({ kind: 'refused', why: 'noConsent' });
  });

  it('refuses consent for another request: a bare name, the same name in another namespace, another name', function () {
    for (const value of [request.name, `team-b/${request.name}`, `${request.namespace}/other`, '', `${request.namespace}/${request.name}/`]) {
      expect(claimServiceAccount({ uid: 'u1', annotations: consent(value) }, request, undefined), value)
        .to.deep.equal({ kind: 'refused', why: 'consentForAnother' });
    }
  });

  it('never moves another request\'s ServiceAccount by consent, nor one carrying any of the managed labels', function () {
    const mine = consent(`${request.namespace}/${request.name}`);
    expect(claimServiceAccount({ uid: 'u1', labels: managedLabels('team-b', 'x'), annotations: mine }, request, undefined))
      .to.deep.equal({ kind: 'refused', why: 'labelledForAnother' });
    expect(claimServiceAccount({ uid: 'u1', labels: { 'svc.dpu.nvidia.com/managed-by-controller': 'someone-else' }, annotations: mine },
      request, undefined)).to.deep.equal({ kind: 'refused', why: 'labelledForAnother' });
    expect(claimServiceAccount({ uid: 'u1', labels: { 'svc.dpu.nvidia.com/credential-request-name': request.name }, annotations: mine },
      request, undefined)).to.deep.equal({ kind: 'refused', why: 'labelledForAnother' });
  });
});
