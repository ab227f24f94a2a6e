// Which proxy, if any, a call to an API server goes through: HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY read as Go's golang.org/x/net/http/httpproxy reads them (what DPF's controller and
// client-go honour), so the webhook reaches the same clusters the same way. Pure: the
// environment is passed in.
import { BlockList, isIP } from 'node:net';
import { parseUrl } from '../url.js';

/** The proxy variables name a proxy the webhook cannot use (a SOCKS proxy, an unparsable URL). */
export class UnusableProxyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnusableProxyError';
  }
}

/** The first of the names set to a non-empty value (Go's getEnvAny: upper case first). */
const firstOf = (env: NodeJS.ProcessEnv, ...names: string[]): string => {
  for (const name of names) {
    const value = env[name];
    if (value) return value;
  }
  return '';
};

/** Go's parseProxy: a value without a scheme (`proxy:3128`) is an http:// proxy. */
function parseProxyUrl(value: string, variable: string): URL {
  let url = parseUrl(value);
  if (!url || !url.host) {
    try {
      url = new URL(`http://${value}`);
    } catch {
      throw new UnusableProxyError(`${variable} is not a URL`);
    }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UnusableProxyError(`${variable} is a ${url.protocol.replace(/:$/, '')} proxy: only http and https proxies are supported`);
  }
  return url;
}

const stripBrackets = (host: string) => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);

/** host[:port] of one NO_PROXY entry; the port is '' when the entry has none. */
function splitHostPort(entry: string): { host: string; port: string } {
  const bracketed = /^\[([^\]]*)\](?::(\d*))?$/.exec(entry);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ?? '' };
  const colon = entry.lastIndexOf(':');
  // More than one colon and no brackets: an IPv6 address without a port.
  if (colon === -1 || entry.indexOf(':') !== colon) return { host: entry, port: '' };
  return { host: entry.slice(0, colon), port: entry.slice(colon + 1) };
}

type Matcher = (host: string, port: string, ipFamily: 'ipv4' | 'ipv6' | undefined) => boolean;

/** NO_PROXY's entries as Go's httpproxy config.init reads them; null: `*`, nothing is proxied. */
function noProxyMatchers(noProxy: string): Matcher[] | null {
  const matchers: Matcher[] = [];
  for (const raw of noProxy.split(',')) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return null;
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr && isIP(cidr[1]!)) {
      const family = isIP(cidr[1]!) === 6 ? 'ipv6' : 'ipv4';
      const prefix = Number(cidr[2]);
      if (prefix > (family === 'ipv6' ? 128 : 32)) continue;
      const block = new BlockList();
      block.addSubnet(cidr[1]!, prefix, family);
      matchers.push((host, _port, ipFamily) => ipFamily !== undefined && block.check(host, ipFamily));
      continue;
    }
    const { host, port } = splitHostPort(entry);
    if (!host) continue;
    if (isIP(host)) {
      const block = new BlockList();
      block.addAddress(host, isIP(host) === 6 ? 'ipv6' : 'ipv4');
      matchers.push((candidate, candidatePort, ipFamily) => ipFamily !== undefined && block.check(candidate, ipFamily) && (!port || port === candidatePort));
      continue;
    }
    // foo.com matches foo.com and bar.foo.com; .foo.com and *.foo.com only bar.foo.com.
    const bare = host.startsWith('*.') ? host.slice(1) : host;
    const matchesItself = !bare.startsWith('.');
    const suffix = matchesItself ? `.${bare}` : bare;
    matchers.push((candidate, candidatePort) =>
      (candidate.endsWith(suffix) || (matchesItself && candidate === suffix.slice(1))) && (!port || port === candidatePort));
  }
  return matchers;
}

/**
 * The proxy a call to `target` (an http(s) URL) goes through, or undefined for a direct
 * connection. As in Go: HTTPS_PROXY for https, HTTP_PROXY for http (ignored under CGI, when
 * REQUEST_METHOD is set); never for localhost or a loopback address; not for a host NO_PROXY
 * names (domains and their subdomains, IPs, CIDRs, each with an optional port; `*`: none).
 * Throws UnusableProxyError when the variable that applies names a proxy that cannot be used.
 */
export function proxyFor(target: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const https = target.protocol === 'https:';
  const variable = https ? 'HTTPS_PROXY' : 'HTTP_PROXY';
  const value = https ? firstOf(env, 'HTTPS_PROXY', 'https_proxy') : env.REQUEST_METHOD ? '' : firstOf(env, 'HTTP_PROXY', 'http_proxy');
  if (!value) return undefined;

  const host = stripBrackets(target.hostname).toLowerCase();
  const port = target.port || (https ? '443' : '80');
  if (host === 'localhost') return undefined;
  const family = isIP(host) === 4 ? 'ipv4' : isIP(host) === 6 ? 'ipv6' : undefined;
  if (family) {
    const loopback = new BlockList();
    loopback.addSubnet('127.0.0.0', 8, 'ipv4');
    loopback.addAddress('::1', 'ipv6');
    if (loopback.check(host, family)) return undefined;
  }
  const matchers = noProxyMatchers(firstOf(env, 'NO_PROXY', 'no_proxy'));
  if (matchers === null || matchers.some((matches) => matches(host, port, family))) return undefined;
  return parseProxyUrl(value, variable);
}
