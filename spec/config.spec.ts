import { expect } from 'chai';
import { ConfigError, loadConfig } from '../server/config.js';

describe('loadConfig', function () {
  it('refuses to start with an empty environment, naming what to set', function () {
    expect(() => loadConfig({})).to.throw(ConfigError, /no TLS \(set TLS_CERT_FILE and TLS_KEY_FILE\) and no hook authentication \(set HOOK_BEARER_TOKEN_FILE or TLS_CLIENT_CA_FILE\).*set ALLOW_INSECURE_HOOKS=true/);
  });

  it('has these defaults otherwise', function () {
    expect(loadConfig({ ALLOW_INSECURE_HOOKS: 'true' })).to.deep.equal({
      port: 8080, metricsPort: 9090, logLevel: 'info', remoteTimeoutMs: 2_000, maxBodyBytes: 4 * 1024 * 1024, filePollIntervalMs: 5_000, shutdownTimeoutMs: 15_000,
      idleTargetCloseMs: 15 * 60_000, allowInsecureHooks: true,
      policy: {
        protectedNamespaces: ['metacontroller', 'dpu-credential-webhook'], maxTokenDurationSeconds: 168 * 3600,
        renewalGraceMs: 600_000, minForcedRotationIntervalMs: 60_000,
      },
    });
  });

  it('reads the request policy: protected namespaces, the lifetime ceiling, the renewal grace, the rotation interval', function () {
    const insecure = { ALLOW_INSECURE_HOOKS: 'true' };
    expect(loadConfig({ ...insecure, PROTECTED_NAMESPACES: ' metacontroller, openshift-* ,', MAX_TOKEN_DURATION: '24h',
      RENEWAL_GRACE: '2m', MIN_FORCED_ROTATION_INTERVAL: '0s' }).policy).to.deep.equal({
      protectedNamespaces: ['metacontroller', 'openshift-*'], maxTokenDurationSeconds: 86_400, renewalGraceMs: 120_000, minForcedRotationIntervalMs: 0,
    });
    expect(loadConfig({ ...insecure, PROTECTED_NAMESPACES: '' }).policy.protectedNamespaces).to.deep.equal([]);
    expect(() => loadConfig({ ...insecure, MAX_TOKEN_DURATION: '721h' })).to.throw(ConfigError, 'MAX_TOKEN_DURATION=721h');
    expect(() => loadConfig({ ...insecure, MAX_TOKEN_DURATION: '5m' })).to.throw(ConfigError, 'MAX_TOKEN_DURATION=5m');
    expect(() => loadConfig({ ...insecure, RENEWAL_GRACE: 'soon' })).to.throw(ConfigError, 'RENEWAL_GRACE=soon');
    expect(() => loadConfig({ ...insecure, PROTECTED_NAMESPACES: 'Kube System' })).to.throw(ConfigError, '"Kube System"');
  });

  it('starts with TLS and a bearer token, or TLS and a client CA, without ALLOW_INSECURE_HOOKS', function () {
    const tls = { TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k' };
    expect(loadConfig({ ...tls, HOOK_BEARER_TOKEN_FILE: '/t' })).to.include({ allowInsecureHooks: false, hookBearerTokenFile: '/t' });
    expect(loadConfig({ ...tls, TLS_CLIENT_CA_FILE: '/ca' })).to.include({ allowInsecureHooks: false, tlsClientCaFile: '/ca' });
  });

  it('refuses TLS without hook authentication, and a bearer token without TLS, unless ALLOW_INSECURE_HOOKS=true', function () {
    const tlsOnly = { TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k' };
    const tokenOnly = { HOOK_BEARER_TOKEN_FILE: '/t' };
    expect(() => loadConfig(tlsOnly)).to.throw(ConfigError, /^refusing to serve the hooks with no hook authentication \(set HOOK_BEARER_TOKEN_FILE/);
    expect(() => loadConfig(tokenOnly)).to.throw(ConfigError, /^refusing to serve the hooks with no TLS \(set TLS_CERT_FILE and TLS_KEY_FILE\): /);
    expect(loadConfig({ ...tlsOnly, ALLOW_INSECURE_HOOKS: 'true' }).allowInsecureHooks).to.equal(true);
    expect(loadConfig({ ...tokenOnly, ALLOW_INSECURE_HOOKS: 'true' }).allowInsecureHooks).to.equal(true);
    expect(() => loadConfig({ ...tokenOnly, ALLOW_INSECURE_HOOKS: 'false' })).to.throw(ConfigError, 'no TLS');
  });

  it('reads every documented variable', function () {
    const config = loadConfig({
      PORT: '9443', METRICS_PORT: '9100', LOG_LEVEL: 'debug', HOST_CLUSTER_SERVER: 'https://[fd00::1]:6443/', REMOTE_TIMEOUT_MS: '1500',
      HOOK_BEARER_TOKEN_FILE: '/t', TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_CA_FILE: '/ca', TLS_CLIENT_SUBJECT: 'mc',
      IDLE_TARGET_CLOSE_MS: '60000',
    });
    expect(config).to.include({
      idleTargetCloseMs: 60_000,
      port: 9443, metricsPort: 9100, logLevel: 'debug', hostClusterServer: 'https://[fd00::1]:6443', remoteTimeoutMs: 1_500,
      hookBearerTokenFile: '/t', tlsCertFile: '/c', tlsKeyFile: '/k', tlsClientCaFile: '/ca', tlsClientSubject: 'mc',
    });
  });

  it('requires the shipped client certificate\'s common name when a client CA is set and TLS_CLIENT_SUBJECT is not', function () {
    const tls = { TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_CA_FILE: '/ca' };
    expect(loadConfig(tls).tlsClientSubject).to.equal('metacontroller');
    expect(loadConfig({ ...tls, TLS_CLIENT_SUBJECT: ' ' }).tlsClientSubject).to.equal('metacontroller');
    expect(loadConfig({ TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', HOOK_BEARER_TOKEN_FILE: '/t' })).to.not.have.property('tlsClientSubject');
  });

  for (const [env, message] of [
    [{ PORT: 'http' }, 'PORT=http'],
    [{ LOG_LEVEL: 'trace' }, 'LOG_LEVEL=trace'],
    [{ METRICS_PORT: '-1' }, 'METRICS_PORT=-1'],
    [{ PORT: '9090' }, 'METRICS_PORT=9090 is PORT too'],
    [{ REMOTE_TIMEOUT_MS: '9000' }, 'from 100 to 3000'],
    [{ IDLE_TARGET_CLOSE_MS: '10' }, 'IDLE_TARGET_CLOSE_MS=10'],
    [{ HOST_CLUSTER_SERVER: '10.0.0.1:6443' }, 'expected an https URL'],
    [{ HOST_CLUSTER_SERVER: 'http://10.0.0.1' }, 'expected an https URL'],
    [{ TLS_CERT_FILE: '/c' }, 'set both or neither'],
    [{ TLS_CLIENT_CA_FILE: '/ca' }, 'TLS_CLIENT_CA_FILE needs TLS'],
    [{ ALLOW_INSECURE_HOOKS: 'yes' }, 'ALLOW_INSECURE_HOOKS=yes: expected true or false'],
    [{ TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', TLS_CLIENT_SUBJECT: 'mc' }, 'TLS_CLIENT_SUBJECT needs TLS_CLIENT_CA_FILE'],
  ] as const) {
    it(`refuses ${JSON.stringify(env)} with a message naming the variable`, function () {
      expect(() => loadConfig(env)).to.throw(ConfigError, message);
    });
  }
});
