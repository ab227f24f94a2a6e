import { expect } from 'chai';
import { serviceAccountUidOf } from '../../server/kube/tokens.js';

const jwt = (claims: unknown) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.signature`;

describe('serviceAccountUidOf', function () {
  it('reads the ServiceAccount UID claim of a bound token', function () {
    expect(serviceAccountUidOf(jwt({ 'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'sa', uid: 'uid-1' } } }))).to.equal('uid-1');
  });

  it('answers undefined for a token without the claim, or that is not a JWT', function () {
    expect(serviceAccountUidOf(jwt({ sub: 'x' }))).to.equal(undefined);
    expect(serviceAccountUidOf('not-a-jwt')).to.equal(undefined);
    expect(serviceAccountUidOf('a.%%%.c')).to.equal(undefined);
  });
});
