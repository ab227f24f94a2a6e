import { expect } from 'chai';
import { parseDurationMs } from '../../server/credential/duration.js';

describe('parseDurationMs', function () {
  const cases: [string, number | undefined][] = [
    ['1h', 3_600_000], ['10m', 600_000], ['1h30m', 5_400_000], ['1.5h', 5_400_000], ['90s', 90_000],
    ['500ms', 500], ['2h45m10s', 9_910_000], ['9m59s', 599_000], ['0s', 0], ['100000h', 360_000_000_000],
    ['1e3h', undefined], ['', undefined], ['h', undefined], ['1d', undefined], ['-1h', undefined], [' 1h', undefined], ['1H', undefined],
  ];
  for (const [text, expected] of cases) {
    it(`reads "${text}" as ${expected === undefined ? 'not a duration' : `${expected} ms`}`, function () {
      expect(parseDurationMs(text)).to.equal(expected);
    });
  }
});
