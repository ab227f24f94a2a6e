// The bootstrap's settings from its environment (server/bootstrap/settings.ts), as the chart's Job writes them.
import { expect } from 'chai';
import { bootstrapSettingsFrom } from '../../server/bootstrap/settings.js';

const chartEnv = {
  BOOTSTRAP_NAMESPACE: 'dcw', LOG_LEVEL: 'info', HOOK_TOKEN_SECRET: 'dcw-hook-token', CA_SECRET: 'dcw-ca', TLS_SECRET: 'dcw-tls',
  TLS_DNS_NAMES: 'dcw.dcw,dcw.dcw.svc,dcw.dcw.svc.cluster.local', CA_VALIDITY_DAYS: '3650', SERVING_VALIDITY_DAYS: '365', RENEW_BEFORE_DAYS: '120',
};

describe('bootstrapSettingsFrom', function () {
  it('reads what the chart\'s Job sets', function () {
    expect(bootstrapSettingsFrom(chartEnv)).to.deep.equal({
      namespace: 'dcw', logLevel: 'info', hookTokenSecret: 'dcw-hook-token',
      tls: { caSecret: 'dcw-ca', servingSecret: 'dcw-tls', dnsNames: ['dcw.dcw', 'dcw.dcw.svc', 'dcw.dcw.svc.cluster.local'],
        caValidityDays: 3650, servingValidityDays: 365, renewBeforeDays: 120 },
    });
  });

  it('makes the token alone without the TLS settings (tls.source cert-manager or external), and the certificates alone without HOOK_TOKEN_SECRET', function () {
    expect(bootstrapSettingsFrom({ BOOTSTRAP_NAMESPACE: 'dcw', HOOK_TOKEN_SECRET: 't' })).to.deep.equal({ namespace: 'dcw', logLevel: 'info', hookTokenSecret: 't' });
    const { HOOK_TOKEN_SECRET: _token, ...certificatesOnly } = chartEnv;
    expect(bootstrapSettingsFrom(certificatesOnly)).to.not.have.property('hookTokenSecret');
  });

  it('refuses a missing namespace, nothing to make, half the TLS settings, a bad name or a bad number, saying which', function () {
    const refusals: [NodeJS.ProcessEnv, RegExp][] = [
      [{ ...chartEnv, BOOTSTRAP_NAMESPACE: '' }, /BOOTSTRAP_NAMESPACE is required/],
      [{ BOOTSTRAP_NAMESPACE: 'dcw' }, /nothing to make/],
      [{ ...chartEnv, TLS_SECRET: '' }, /go together/],
      [{ ...chartEnv, TLS_SECRET: 'dcw-ca' }, /must differ/],
      [{ ...chartEnv, CA_SECRET: 'Not_A_Name' }, /CA_SECRET=Not_A_Name: not a valid object name/],
      [{ ...chartEnv, RENEW_BEFORE_DAYS: '1.5' }, /RENEW_BEFORE_DAYS=1.5: expected a whole number/],
      [{ ...chartEnv, SERVING_VALIDITY_DAYS: '0' }, /at least 1/],
      [{ ...chartEnv, LOG_LEVEL: 'loud' }, /LOG_LEVEL=loud/],
    ];
    for (const [env, message] of refusals) expect(() => bootstrapSettingsFrom(env), message.source).to.throw(message);
  });
});
