// The bootstrap's plan (server/bootstrap/plan.ts): what it makes, renews and leaves alone,
// from the Secrets as they are and the clock.
import { expect } from 'chai';
import { createCa, issueServingCertificate, type IssuedCertificate } from '../../server/bootstrap/certificates.js';
import { foreignSecretNotice, planBootstrap, servingReasons, type ObservedSecret, type ObservedSecrets } from '../../server/bootstrap/plan.js';
import type { BootstrapSettings } from '../../server/bootstrap/settings.js';
import { openssl0_3Ca } from './fixtures.js';

const dnsNames = ['dcw.ns', 'dcw.ns.svc', 'dcw.ns.svc.cluster.local'];
const settings: BootstrapSettings = {
  namespace: 'ns', hookTokenSecret: 'dcw-hook-token', logLevel: 'info',
  tls: { caSecret: 'dcw-ca', servingSecret: 'dcw-tls', dnsNames, caValidityDays: 3650, servingValidityDays: 365, renewBeforeDays: 120 },
};
const madeAt = new Date('2026-01-01T00:00:00Z');
const day = 86_400_000;

const secret = (name: string, data: Record<string, string>, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): ObservedSecret =>
  ({ name, labels, data, annotations });
const caSecret = (ca: IssuedCertificate) => secret('dcw-ca', { 'ca.crt': ca.certPem, 'tls.crt': ca.certPem, 'tls.key': ca.keyPem });
const servingSecret = (ca: IssuedCertificate, serving: IssuedCertificate) => secret('dcw-tls', { 'ca.crt': ca.certPem, 'tls.crt': serving.certPem, 'tls.key': serving.keyPem });

describe('planBootstrap', function () {
  let ca: IssuedCertificate;
  let serving: IssuedCertificate;
  let installed: ObservedSecrets;

  before(async function () {
    ca = await createCa('dcw-ca', 3650, madeAt);
    serving = await issueServingCertificate(ca, dnsNames, 365, madeAt);
    installed = { hookToken: secret('dcw-hook-token', { token: 'x'.repeat(64) }), ca: caSecret(ca), serving: servingSecret(ca, serving) };
  });

  it('makes the token, the CA and the serving certificate when none exists, the CA before the certificate it signs', function () {
    expect(planBootstrap({}, settings, madeAt)).to.deep.equal({ actions: [
      { kind: 'create-hook-token', secret: 'dcw-hook-token' },
      { kind: 'create-ca', secret: 'dcw-ca' },
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.missing, replace: false },
    ] });
  });

  it('does nothing when all three are in place and the certificate has more than renewBeforeDays left', function () {
    expect(planBootstrap(installed, settings, new Date(madeAt.getTime() + 200 * day))).to.deep.equal({ actions: [] });
  });

  it('renews the serving certificate from the same CA once it is within renewBeforeDays of its end, and never makes a new CA', function () {
    const renewAt = serving.notAfter.getTime() - 120 * day;
    expect(planBootstrap(installed, settings, new Date(renewAt - 1000))).to.deep.equal({ actions: [] });
    expect(planBootstrap(installed, settings, new Date(renewAt))).to.deep.equal({ actions: [
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.expiring, replace: true },
    ] });
    // Expired long ago, the CA too: no new CA either (Metacontroller trusts this one until it restarts),
    // but no certificate from a dead CA: the Job fails, saying so.
    const muchLater = new Date(madeAt.getTime() + 4000 * day);
    expect(planBootstrap(installed, settings, muchLater)).to.have.property('refused').that.includes('its CA certificate expired');
  });

  it('renews the serving certificate when the names change (another release name or namespace)', function () {
    const renamed = { ...settings, tls: { ...settings.tls!, dnsNames: ['other.ns', 'other.ns.svc', 'other.ns.svc.cluster.local'] } };
    expect(planBootstrap(installed, renamed, madeAt)).to.deep.equal({ actions: [
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.names, replace: true },
    ] });
    // The same names in another order are the same certificate.
    const reordered = { ...settings, tls: { ...settings.tls!, dnsNames: [...dnsNames].reverse() } };
    expect(planBootstrap(installed, reordered, madeAt)).to.deep.equal({ actions: [] });
  });

  it('renews a serving certificate another CA signed, or whose key is not its own, or that cannot be read', async function () {
    const stranger = await createCa('stranger', 10, madeAt);
    const strangers = await issueServingCertificate(stranger, dnsNames, 365, madeAt);
    expect(planBootstrap({ ...installed, serving: servingSecret(ca, strangers) }, settings, madeAt))
      .to.deep.equal({ actions: [{ kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.otherCa, replace: true }] });
    const mixed = secret('dcw-tls', { 'ca.crt': ca.certPem, 'tls.crt': serving.certPem, 'tls.key': strangers.keyPem });
    const garbled = secret('dcw-tls', { 'tls.crt': 'not a certificate' });
    for (const bad of [mixed, garbled]) {
      expect(planBootstrap({ ...installed, serving: bad }, settings, madeAt))
        .to.deep.equal({ actions: [{ kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.unreadable, replace: true }] });
    }
  });

  it('issues the serving certificate again when the CA is made now, though one exists (it was signed by a CA that is gone)', function () {
    expect(planBootstrap({ hookToken: installed.hookToken!, serving: installed.serving! }, settings, madeAt)).to.deep.equal({ actions: [
      { kind: 'create-ca', secret: 'dcw-ca' },
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.newCa, replace: true },
    ] });
  });

  it('never overwrites a CA or a token that exists but cannot be used: it refuses, and does nothing else', function () {
    for (const broken of [secret('dcw-ca', { 'ca.crt': ca.certPem }), secret('dcw-ca', { 'ca.crt': serving.certPem, 'tls.key': serving.keyPem }),
      secret('dcw-ca', { 'ca.crt': ca.certPem, 'tls.key': serving.keyPem })]) {
      const plan = planBootstrap({ ...installed, ca: broken }, settings, madeAt);
      expect(plan).to.have.property('refused').that.includes('Secret dcw-ca exists but').and.includes('not overwritten');
    }
    const plan = planBootstrap({ ...installed, hookToken: secret('dcw-hook-token', { previous: 'y'.repeat(64) }) }, settings, madeAt);
    expect(plan).to.have.property('refused').that.includes('Secret dcw-hook-token exists without a token');
  });

  it('refuses a token it did not make that is shorter than 32 characters (guessable), and does nothing else', function () {
    const plan = planBootstrap({ ...installed, hookToken: secret('dcw-hook-token', { token: 'x'.repeat(31) }) }, settings, madeAt);
    expect(plan).to.have.property('refused').that.includes('without a token of at least 32 characters');
    expect(planBootstrap({ ...installed, hookToken: secret('dcw-hook-token', { token: 'x'.repeat(32) }) }, settings, madeAt)).to.deep.equal({ actions: [] });
  });

  it('refuses a CA whose certificate has expired: a serving certificate it signed would fail every hook call', async function () {
    const shortCa = await createCa('dcw-ca', 10, madeAt);
    const afterItsEnd = new Date(madeAt.getTime() + 11 * day);
    const plan = planBootstrap({ ...installed, ca: caSecret(shortCa) }, settings, afterItsEnd);
    expect(plan).to.have.property('refused').that.includes('Secret dcw-ca exists but its CA certificate expired on');
  });

  it('names a token or CA Secret that neither it made nor a Helm release rendered, and no other', function () {
    const madeBy = { 'app.kubernetes.io/managed-by': 'dpu-credential-webhook-bootstrap' };
    expect(foreignSecretNotice(secret('dcw-ca', {}), madeBy)).to.include('Secret dcw-ca was not made by this bootstrap');
    expect(foreignSecretNotice(secret('dcw-ca', {}, {}, madeBy), madeBy)).to.equal(undefined);
    expect(foreignSecretNotice(secret('dcw-ca', {}, { 'meta.helm.sh/release-name': 'dcw' }), madeBy)).to.equal(undefined);
    expect(foreignSecretNotice(undefined, madeBy)).to.equal(undefined);
  });

  it('keeps a token with a previous key as it is', function () {
    const rotating = secret('dcw-hook-token', { token: 'n'.repeat(64), previous: 'o'.repeat(64) });
    expect(planBootstrap({ ...installed, hookToken: rotating }, settings, madeAt)).to.deep.equal({ actions: [] });
  });

  it('makes only what the values ask for: no token without HOOK_TOKEN_SECRET, no certificates without the TLS settings', function () {
    const { hookTokenSecret: _token, ...certificatesOnly } = settings;
    expect(planBootstrap({}, certificatesOnly, madeAt)).to.deep.include({ actions: [
      { kind: 'create-ca', secret: 'dcw-ca' },
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.missing, replace: false },
    ] });
    const { tls: _tls, ...tokenOnly } = settings;
    expect(planBootstrap({}, tokenOnly, madeAt)).to.deep.equal({ actions: [{ kind: 'create-hook-token', secret: 'dcw-hook-token' }] });
  });

  it('marks the Secrets a 0.3 release rendered helm.sh/resource-policy=keep, first, and those marked already not again', function () {
    const helm = { 'meta.helm.sh/release-name': 'dcw', 'meta.helm.sh/release-namespace': 'ns' };
    const rendered: ObservedSecrets = {
      hookToken: { ...installed.hookToken!, annotations: helm },
      ca: { ...installed.ca!, annotations: { ...helm, 'helm.sh/resource-policy': 'keep' } },
      serving: { ...installed.serving!, annotations: helm },
    };
    const renewAt = new Date(serving.notAfter.getTime() - 120 * day);
    expect(planBootstrap(rendered, settings, renewAt)).to.deep.equal({ actions: [
      { kind: 'keep-through-helm-upgrade', secret: 'dcw-hook-token' },
      { kind: 'keep-through-helm-upgrade', secret: 'dcw-tls' },
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.expiring, replace: true },
    ] });
  });

  it('keeps using the RSA CA the 0.3 chart made (genCA) and renews from it', async function () {
    const old = await openssl0_3Ca();
    const oldServing = await issueServingCertificate(old, dnsNames, 365, madeAt);
    const observed = { ...installed, ca: caSecret({ ...old, notAfter: madeAt }), serving: servingSecret({ ...old, notAfter: madeAt }, oldServing) };
    expect(planBootstrap(observed, settings, madeAt)).to.deep.equal({ actions: [] });
    expect(planBootstrap(observed, settings, new Date(madeAt.getTime() + 300 * day))).to.deep.equal({ actions: [
      { kind: 'issue-serving', secret: 'dcw-tls', why: servingReasons.expiring, replace: true },
    ] });
  });
});
