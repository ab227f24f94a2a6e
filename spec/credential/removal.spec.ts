import { expect } from 'chai';
import { isGone, planRemoval } from '../../server/credential/removal.js';

const found = (uid: string, labelledOurs: boolean, ofOurKind = true) => ({ uid, ofOurKind, labelledOurs });

describe('planRemoval (what the webhook made is deleted by its UID)', function () {
  it('deletes the object of the recorded UID whatever its labels say, and calls a relabelled one tampered', function () {
    expect(planRemoval(found('uid-1', true), 'uid-1')).to.deep.equal({ delete: true, uid: 'uid-1', as: 'deleted' });
    expect(planRemoval(found('uid-1', false), 'uid-1')).to.deep.equal({ delete: true, uid: 'uid-1', as: 'tampered' });
  });

  it('leaves an object of another UID alone, however it is labelled: ours is gone, and its tokens with it', function () {
    expect(planRemoval(found('someone-else', true), 'uid-1')).to.deep.equal({ delete: false, as: 'absent' });
    expect(planRemoval(found('someone-else', false), 'uid-1')).to.deep.equal({ delete: false, as: 'absent' });
  });

  it('takes nothing under the name, or a Secret of another type, as absent (a Secret\'s type cannot change)', function () {
    expect(planRemoval(undefined, 'uid-1')).to.deep.equal({ delete: false, as: 'absent' });
    expect(planRemoval(undefined, undefined)).to.deep.equal({ delete: false, as: 'absent' });
    expect(planRemoval(found('uid-1', true, false), 'uid-1')).to.deep.equal({ delete: false, as: 'absent' });
  });

  it('without a recorded UID (an older status), deletes only what is still labelled ours: the rest is unproven, never gone', function () {
    expect(planRemoval(found('uid-1', true), undefined)).to.deep.equal({ delete: true, uid: 'uid-1', as: 'deleted' });
    expect(planRemoval(found('uid-1', false), undefined)).to.deep.equal({ delete: false, as: 'unproven' });
    expect(isGone('unproven')).to.equal(false);
    expect(['deleted', 'tampered', 'absent'].every((removal) => isGone(removal as 'deleted'))).to.equal(true);
  });
});
