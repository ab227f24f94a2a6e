// The Authorization header is read without a regular expression (issue 24 point 2):
// `/^Bearer\s+(.+)$/i` backtracked quadratically over a run of white space.
import { expect } from 'chai';
import { bearerTokenOf } from '../../server/http/bearer-auth.js';

describe('bearerTokenOf (the hook token in an Authorization header)', function () {
  it('reads the token after the Bearer scheme, in any case, trimmed', function () {
    expect(bearerTokenOf('Bearer abc.def')).to.equal('abc.def');
    expect(bearerTokenOf('bearer   abc ')).to.equal('abc');
    expect(bearerTokenOf('BEARER\tabc')).to.equal('abc');
  });

  it('reads nothing from another scheme, a missing separator or an empty token', function () {
    for (const header of [undefined, '', 'Basic YTpi', 'Bearerabc', 'Bearer', 'Bearer    ', 'Token abc']) {
      expect(bearerTokenOf(header), JSON.stringify(header)).to.equal(undefined);
    }
  });

  it('reads a header of 16,000 spaces and a line break at once', function () {
    const startedAt = performance.now();
    expect(bearerTokenOf(`Bearer${' '.repeat(16_000)}\u2028`)).to.equal(undefined);
    const ms = performance.now() - startedAt;
    console.log(`      16,000 spaces: ${ms.toFixed(2)} ms`);
    expect(ms).to.be.below(100);
  });
});
