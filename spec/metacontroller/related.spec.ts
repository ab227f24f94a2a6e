// Which objects a customize rule selects in the driver, as Metacontroller v4.17.2's
// customize manager selects them (determineSelectionType, GetRelatedObjects, v2 hooks).
import { expect } from 'chai';
import { selectionOf, selectorMatcher } from '../../harness/metacontroller/related.js';

const rule = { apiVersion: 'provisioning.dpu.nvidia.com/v1alpha1', resource: 'dpuclusters' };

describe('the driver: related rules as Metacontroller selects them', function () {
  it('searches every namespace for a rule with names and no namespace, not the parent\'s', function () {
    expect(selectionOf({ ...rule, names: ['a'] })).to.deep.include({ namespace: '', names: ['a'] });
    expect(selectionOf({ ...rule, namespace: 'dpf', names: ['a'] })).to.deep.include({ namespace: 'dpf', names: ['a'] });
  });

  it('selects with labelSelector, in every namespace unless the rule names one', function () {
    const everywhere = selectionOf({ ...rule, labelSelector: { matchLabels: { tier: 'a' } } });
    expect(everywhere.namespace).to.equal('');
    expect([everywhere.matches({ tier: 'a' }), everywhere.matches({ tier: 'b' })]).to.deep.equal([true, false]);
    expect(selectionOf({ ...rule, namespace: 'dpf', labelSelector: { matchLabels: { tier: 'a' } } }).namespace).to.equal('dpf');
    const all = selectionOf(rule);
    expect([all.namespace, all.matches({})]).to.deep.equal(['', true]);
  });

  it('fails a rule that combines names with a selector, or namespace with namespaceSelector', function () {
    expect(() => selectionOf({ ...rule, names: ['a'], labelSelector: {} })).to.throw('both names and labelSelector');
    expect(() => selectionOf({ ...rule, namespace: 'x', namespaceSelector: {} })).to.throw('both namespace and namespaceSelector');
  });

  it('reads matchExpressions as LabelSelectorAsSelector does, and refuses what it refuses', function () {
    const matches = selectorMatcher({ matchExpressions: [
      { key: 'a', operator: 'In', values: ['1', '2'] }, { key: 'b', operator: 'NotIn', values: ['x'] },
      { key: 'c', operator: 'Exists' }, { key: 'd', operator: 'DoesNotExist' },
    ] });
    expect(matches({ a: '1', c: '' })).to.equal(true);
    expect(matches({ a: '1', b: 'x', c: '' })).to.equal(false);
    expect(matches({ a: '3', c: '' })).to.equal(false);
    expect(matches({ a: '1', c: '', d: '' })).to.equal(false);
    expect(() => selectorMatcher({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] })).to.throw("can't be empty");
    expect(() => selectorMatcher({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['1'] }] })).to.throw('must be empty');
    expect(() => selectorMatcher({ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['1'] }] })).to.throw('not a valid');
  });
});
