import { expect } from 'chai';
import { readinessChange } from '../../server/credential/events.js';
import { buildStatus, failed, reasons, succeeded, type ConditionResult } from '../../server/credential/status.js';

const now = new Date('2026-01-01T00:00:00Z');
const statusWith = (secret: ConditionResult, previous?: ReturnType<typeof buildStatus>) =>
  buildStatus({ previous, generation: 1, serviceAccount: succeeded('sa exists'), secret, now });

describe('readinessChange (Events)', function () {
  const ready = statusWith(succeeded('ok'));
  const down = statusWith(failed(reasons.targetClusterUnreachable, 'cannot reach the DPU cluster'), ready);

  it('warns once when a request starts failing, with the reason and message', function () {
    expect(readinessChange(ready, down)).to.deep.equal([{ type: 'Warning', reason: 'TargetClusterUnreachable', note: 'cannot reach the DPU cluster' }]);
    expect(readinessChange(down, statusWith(failed(reasons.targetClusterUnreachable, 'cannot reach the DPU cluster'), down))).to.deep.equal([]);
  });

  it('warns again when the failure reason changes, and says so when it is Ready again', function () {
    const refused = statusWith(failed(reasons.tokenRequestFailed, 'HTTP 500'), down);
    expect(readinessChange(down, refused).map((event) => event.reason)).to.deep.equal(['TokenRequestFailed']);
    expect(readinessChange(refused, statusWith(succeeded('ok'), refused))).to.deep.equal([{ type: 'Normal', reason: 'Ready', note: 'the Secret holds a valid token' }]);
  });

  it('treats Pending (a new token on its way to the Secret) as no failure, and says when the request turns Ready', function () {
    const pending = statusWith(failed(reasons.pending, 'waiting for Metacontroller'));
    expect(readinessChange(undefined, pending)).to.deep.equal([]);
    expect(readinessChange(down, statusWith(failed(reasons.pending, 'waiting'), down))).to.deep.equal([]);
    expect(readinessChange(pending, statusWith(succeeded('ok'), pending)).map((event) => event.reason)).to.deep.equal(['Ready']);
    expect(readinessChange(ready, statusWith(succeeded('ok'), ready))).to.deep.equal([]);
  });
});
