import { expect } from 'chai';
import { secondsUntil } from '../../server/credential/time.js';

describe('secondsUntil', function () {
  it('rounds the seconds until the refresh up, and never below 1', function () {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(secondsUntil(new Date(now.getTime() + 2_880_001), now)).to.equal(2_881);
    expect(secondsUntil(new Date(now.getTime() - 60_000), now)).to.equal(1);
  });
});
