import { expect } from 'chai';
import { bindingOf, serviceAccountUidOf } from '../../server/kube/tokens.js';

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

describe('bindingOf', function () {
  it('reads the anchor a token is bound to, with the UID the API server checks it by', function () {
    const token = jwt({ jti: 'j', 'kubernetes.io': { secret: { name: 'sa-token-x', uid: 'anchor-uid' }, serviceaccount: { name: 'sa', uid: 'sa-uid' } } });
    expect(bindingOf(token)).to.deep.equal({ tokenId: 'j', anchor: 'sa-token-x', anchorUid: 'anchor-uid' });
  });

  it('reads no anchor UID without the anchor\'s name, nor one of the wrong type', function () {
    expect(bindingOf(jwt({ 'kubernetes.io': { secret: { uid: 'anchor-uid' } } }))).to.deep.equal({});
    expect(bindingOf(jwt({ 'kubernetes.io': { secret: { name: 'a', uid: 7 } } }))).to.deep.equal({ anchor: 'a' });
  });
});
