// HTTPS_PROXY, HTTP_PROXY and NO_PROXY read as Go's golang.org/x/net/http/httpproxy reads
// them (its proxy_test.go cases, where they apply to an API server's URL).
import { expect } from 'chai';
import { proxyFor, UnusableProxyError } from '../../server/kube/proxy.js';

const via = (target: string, env: NodeJS.ProcessEnv) => proxyFor(new URL(target), env)?.href;

describe('proxyFor', function () {
  it('takes HTTPS_PROXY for https and HTTP_PROXY for http, upper case first, and none when unset', function () {
    expect(via('https://api.example.com:6443', {})).to.equal(undefined);
    expect(via('https://api.example.com:6443', { HTTPS_PROXY: 'http://upper:3128', https_proxy: 'http://lower:3128' })).to.equal('http://upper:3128/');
    expect(via('https://api.example.com:6443', { https_proxy: 'http://lower:3128' })).to.equal('http://lower:3128/');
    expect(via('https://api.example.com:6443', { HTTP_PROXY: 'http://plain:3128' })).to.equal(undefined);
    expect(via('http://api.example.com', { HTTP_PROXY: 'http://plain:3128', HTTPS_PROXY: 'http://secure:3128' })).to.equal('http://plain:3128/');
  });

  it('ignores HTTP_PROXY under CGI (REQUEST_METHOD set), as Go does (httpoxy)', function () {
    expect(via('http://api.example.com', { HTTP_PROXY: 'http://plain:3128', REQUEST_METHOD: 'GET' })).to.equal(undefined);
  });

  it('reads a proxy without a scheme as http://, and an https:// proxy as it is', function () {
    expect(via('https://api.example.com', { HTTPS_PROXY: 'proxy.corp:3128' })).to.equal('http://proxy.corp:3128/');
    expect(via('https://api.example.com', { HTTPS_PROXY: '10.0.0.1:3128' })).to.equal('http://10.0.0.1:3128/');
    expect(via('https://api.example.com', { HTTPS_PROXY: 'https://user:p%40ss@proxy.corp' })).to.equal('https://user:p%40ss@proxy.corp/');
  });

  it('refuses a SOCKS proxy, naming the variable', function () {
    expect(() => via('https://api.example.com', { HTTPS_PROXY: 'socks5://proxy:1080' })).to.throw(UnusableProxyError, /HTTPS_PROXY is a socks5 proxy/);
  });

  it('never proxies localhost or a loopback address', function () {
    const env = { HTTPS_PROXY: 'http://proxy:3128' };
    for (const target of ['https://localhost:6443', 'https://127.0.0.1:6443', 'https://127.1.2.3', 'https://[::1]:6443']) {
      expect(via(target, env), target).to.equal(undefined);
    }
  });

  it('honours NO_PROXY: domains and their subdomains, leading dots and *., IPs, CIDRs, ports, and *', function () {
    const cases: [string, string, boolean][] = [
      // [NO_PROXY, target, proxied]
      ['*', 'https://api.example.com', false],
      ['example.com', 'https://example.com', false],
      ['example.com', 'https://api.example.com', false],
      ['example.com', 'https://notexample.com', true],
      ['.example.com', 'https://example.com', true],
      ['.example.com', 'https://api.example.com', false],
      ['*.example.com', 'https://example.com', true],
      ['*.example.com', 'https://api.example.com', false],
      [' Example.COM ', 'https://API.example.com', false],
      ['example.com:6443', 'https://api.example.com:6443', false],
      ['example.com:6443', 'https://api.example.com:443', true],
      ['example.com:443', 'https://api.example.com', false],
      ['10.0.0.5', 'https://10.0.0.5:6443', false],
      ['10.0.0.5', 'https://10.0.0.6:6443', true],
      ['10.0.0.5:6443', 'https://10.0.0.5:6443', false],
      ['10.0.0.5:6443', 'https://10.0.0.5:8443', true],
      ['10.0.0.0/8', 'https://10.20.30.40', false],
      ['10.0.0.0/8', 'https://11.0.0.1', true],
      ['fd00::/8', 'https://[fd00::1]:6443', false],
      ['[fd00::1]:6443', 'https://[fd00::1]:6443', false],
      ['fd00::1', 'https://[fd00::2]', true],
      ['other.com,example.com', 'https://api.example.com', false],
      ['other.com, , ,', 'https://api.example.com', true],
      // An IP entry does not match a name, nor a name entry an IP.
      ['10.0.0.5', 'https://ten.example.com', true],
    ];
    for (const [noProxy, target, proxied] of cases) {
      expect(via(target, { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: noProxy }) !== undefined, `NO_PROXY=${noProxy} ${target}`).to.equal(proxied);
    }
    expect(via('https://api.example.com', { HTTPS_PROXY: 'http://proxy:3128', no_proxy: 'example.com' })).to.equal(undefined);
  });
});
