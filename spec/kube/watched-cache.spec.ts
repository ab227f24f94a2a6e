// The watch loop's client-go semantics that need a server misbehaving on cue: paged lists and
// a continue token that expires between pages, and a hostile server flooding the cache past
// its bounds, against a local HTTP server (the faults that real API servers show are in
// spec/reliability/transport.e2e.spec.ts).
import { expect } from 'chai';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { managedByLabel, managedByValue, requestNameLabel, requestNamespaceLabel } from '../../server/credential/names.js';
import { createLogger } from '../../server/log.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { ServiceAccountCache } from '../../server/kube/service-account-cache.js';
import { ensureServiceAccount } from '../../server/kube/service-accounts.js';
import { listPageSize, relistDelayMs, WatchedCache, type WatchedObject } from '../../server/kube/watched-cache.js';

class Cache extends WatchedCache<WatchedObject> {
  constructor(client: KubeRestClient) {
    super(client, '/api/v1/configmaps?labelSelector=a%3Db', (object) => object, { maxObjects: 100 });
  }
}

describe('relistDelayMs', function () {
  it('is client-go\'s backoff: 800 ms doubling per failure, plus up to as much again of jitter, at most 30 s', function () {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((failures) => relistDelayMs(failures, 0))).to.deep.equal([800, 1_600, 3_200, 6_400, 12_800, 25_600, 30_000, 30_000]);
    expect(relistDelayMs(1, 0.999)).to.equal(1_599);
    expect(relistDelayMs(5, 0.5)).to.equal(19_200);
    expect(relistDelayMs(6, 0.5)).to.equal(30_000);
  });
});

describe('WatchedCache lists and watches against a server misbehaving on cue', function () {
  let server: Server;
  let client: KubeRestClient;
  let cache: Cache | undefined;
  afterEach(async function () {
    cache?.close();
    client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** A local server answering every call with `handler`, and a client of it. */
  async function serve(handler: (url: URL, res: ServerResponse) => void): Promise<void> {
    server = createServer((req, res) => {
      res.setHeader('Content-Type', 'application/json');
      handler(new URL(req.url ?? '', 'http://x'), res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new KubeRestClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, { timeoutMs: 2_000 });
  }

  it('page by page (limit, continue), starting over when the continue token has expired (410)', async function () {
    const lists: string[] = [];
    let expireOnce = true;
    await serve((url, res) => {
      if (url.searchParams.get('watch') === 'true') return; // a watch that stays open and quiet
      lists.push(`${url.searchParams.get('limit')} ${url.searchParams.get('continue') ?? '-'}`);
      const token = url.searchParams.get('continue');
      if (token === 'page2' && expireOnce) {
        expireOnce = false;
        res.writeHead(410).end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'continue token expired' }));
        return;
      }
      const page = token === 'page2' ? 2 : 1;
      res.end(JSON.stringify({
        metadata: { resourceVersion: '7', ...(page === 1 ? { continue: 'page2' } : {}) },
        items: [{ metadata: { namespace: 'ns', name: `item-${page}` } }],
      }));
    });
    cache = new Cache(client);
    await cache.until((each) => each.isSynced);
    expect(lists).to.deep.equal([`${listPageSize} -`, `${listPageSize} page2`, `${listPageSize} -`, `${listPageSize} page2`]);
    expect(cache.size).to.equal(2);
    expect(cache.lookup('ns', 'item-2')).to.deep.equal({ metadata: { namespace: 'ns', name: 'item-2' } });
  });


  it('backs off from a watch that brings one bookmark and ends, instead of watching again at once', async function () {
    let watches = 0;
    await serve((url, res) => {
      if (url.searchParams.get('watch') === 'true') {
        watches += 1;
        res.end(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '8' } } })}\n`);
        return;
      }
      res.end(JSON.stringify({ metadata: { resourceVersion: '7' }, items: [] }));
    });
    cache = new Cache(client);
    await delay(2_500);
    console.log(`      watches in 2.5 s: ${watches}`);
    // The backoff (0.8 s doubling, with jitter) allows a handful; watching again at once made thousands.
    expect(watches).to.be.within(1, 5);
  });

  it('keeps backing off when each watch lasts just over a second and the next answers 410: the backoff starts over only after a watch that lasted (third review)', async function () {
    this.timeout(20_000);
    let lists = 0;
    let watches = 0;
    await serve((url, res) => {
      if (url.searchParams.get('watch') === 'true') {
        watches += 1;
        if (watches % 2 === 1) {
          setTimeout(() => res.end(), 1_050);
        } else {
          res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } })}\n`);
        }
        return;
      }
      lists += 1;
      res.end(JSON.stringify({ metadata: { resourceVersion: '7' }, items: [] }));
    });
    cache = new Cache(client);
    await delay(8_000);
    console.log(`      lists in 8 s: ${lists}`);
    // A list about every second before (the 410 after each 1 s watch relisted at once).
    expect(lists).to.be.within(2, 4);
  });

  it('starts a list over once when its continue token expires, and fails it (backing off) when the next one expires too', async function () {
    let lists = 0;
    await serve((url, res) => {
      if (url.searchParams.get('watch') === 'true') return;
      if (url.searchParams.get('continue')) {
        res.writeHead(410).end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'continue token expired' }));
        return;
      }
      lists += 1;
      res.end(JSON.stringify({ metadata: { resourceVersion: '7', continue: 'next' }, items: [] }));
    });
    cache = new Cache(client);
    await delay(2_500);
    console.log(`      first pages in 2.5 s: ${lists}`);
    // Two first pages per attempt, and attempts a backoff apart; starting over without end made thousands.
    expect(lists).to.be.within(2, 8);
    expect(cache.isSynced).to.equal(false);
  });
});

/** heapUsed after a full collection (gc exposed at run time: mocha is not started with --expose-gc). */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const megabytes = (bytes: number) => (bytes / 1e6).toFixed(1);

describe('ServiceAccountCache against a hostile target API server (issue 24 review A)', function () {
  let server: Server;
  let client: KubeRestClient;
  let cache: ServiceAccountCache | undefined;
  /** Calls that reached the server, watches apart. */
  let reads: string[];
  afterEach(async function () {
    cache?.close();
    client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const managed = (index: number, extraLabels: Record<string, string> = {}) => ({
    metadata: {
      namespace: 'tenant', name: `sa-${index}`, uid: `uid-${index}`, resourceVersion: String(index),
      labels: { [managedByLabel]: managedByValue, [requestNameLabel]: `request-${index}`, [requestNamespaceLabel]: 'tenant', ...extraLabels },
    },
  });

  /**
   * A server whose list answers `pages` (each a list of items; a continue token after every
   * page but the last) and whose watch streams `events` then stays open; it answers a GET of
   * one ServiceAccount with it, as a live read.
   */
  async function start(pages: unknown[][], events: (index: number) => unknown | undefined): Promise<void> {
    reads = [];
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      res.setHeader('Content-Type', 'application/json');
      if (url.searchParams.get('watch') === 'true') {
        let index = 0;
        const pump = () => {
          for (;;) {
            const event = events(index++);
            if (event === undefined) return; // stays open and quiet
            if (!res.write(`${JSON.stringify(event)}\n`)) {
              res.once('drain', pump);
              return;
            }
          }
        };
        pump();
        return;
      }
      reads.push(`${req.method} ${url.pathname}`);
      const single = /^\/api\/v1\/namespaces\/tenant\/serviceaccounts\/(.+)$/.exec(url.pathname);
      if (single) {
        res.end(JSON.stringify(managed(Number(single[1]!.replace('sa-', '')))));
        return;
      }
      const page = Number(url.searchParams.get('continue') ?? '0');
      res.end(JSON.stringify({
        metadata: { resourceVersion: '1', ...(page + 1 < pages.length ? { continue: String(page + 1) } : {}) },
        items: pages[page] ?? [],
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new KubeRestClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, { timeoutMs: 5_000 });
  }

  it('keeps only the UID and the managed labels, of managed ServiceAccounts with names Kubernetes allows: a flood of 60 kB labels leaves the heap flat', async function () {
    this.timeout(60_000);
    const flood = 2_000;
    const blob = 'x'.repeat(60_000);
    await start([[]], (index) => {
      if (index >= flood) return undefined;
      // Every fifth one lacks the selector's label, and every seventh has a name longer than Kubernetes allows.
      const account = managed(index, { blob: `${blob}${index}` });
      if (index % 5 === 4) delete (account.metadata.labels as Record<string, string>)[managedByLabel];
      if (index % 7 === 6) account.metadata.name = `${'n'.repeat(300)}${index}`;
      return { type: 'ADDED', object: account };
    });
    const before = heapAfterGc();
    const expected = Array.from({ length: flood }, (_, index) => index).filter((index) => index % 5 !== 4 && index % 7 !== 6).length;
    cache = new ServiceAccountCache(client);
    await cache.until((each) => each.size >= expected);
    await delay(200);
    const after = heapAfterGc();
    console.log(`      ${flood} events of ${blob.length / 1_000} kB labels: ${cache.size} held, heap ${megabytes(before)} MB before, ${megabytes(after)} MB after (gc)`);
    expect(cache.size).to.equal(expected);
    expect(cache.stoppedBy).to.equal(undefined);
    expect(cache.lookup('tenant', 'sa-0')).to.deep.equal({ metadata: {
      namespace: 'tenant', name: 'sa-0', uid: 'uid-0',
      labels: { [managedByLabel]: managedByValue, [requestNameLabel]: 'request-0', [requestNamespaceLabel]: 'tenant' },
    } });
    expect(cache.lookup('tenant', 'sa-4'), 'not matching the selector: not held').to.equal(null);
    // Held whole, they were 120 MB; trimmed, a few hundred bytes each.
    expect(after - before, 'heap growth').to.be.below(30e6);
  });

  it('stops past its cap over the watch, empty and unsynced, logs a warning without object data, and ensureServiceAccount reads live', async function () {
    this.timeout(30_000);
    const cap = 300;
    await start([[managed(0)]], (index) => (index < 2 * cap ? { type: 'ADDED', object: managed(1_000 + index, { secret: 'do-not-log' }) } : undefined));
    const warnings: string[] = [];
    cache = new ServiceAccountCache(client, createLogger('warn', (line) => warnings.push(line)), cap);
    await cache.until((each) => each.stoppedBy !== undefined);
    expect(cache.stoppedBy?.name).to.equal('CacheOverflowError');
    expect(cache.isSynced).to.equal(false);
    expect(cache.size).to.equal(0);
    expect(cache.lookup('tenant', 'sa-0'), 'unknown, not absent').to.equal(undefined);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include('watch cache stopped').and.include('overflow').and.not.include('sa-').and.not.include('do-not-log');

    // A ServiceAccount the server has: the stopped cache sends the read to the API, which finds it.
    const ensured = await ensureServiceAccount(client, { namespace: 'tenant', name: 'sa-5' }, { namespace: 'tenant', name: 'request-5' }, cache);
    expect(ensured).to.deep.equal({ uid: 'uid-5', created: false });
    expect(reads).to.include('GET /api/v1/namespaces/tenant/serviceaccounts/sa-5');
  });

  it('stops when a list brings more items than its cap over its pages', async function () {
    this.timeout(30_000);
    const cap = 300;
    const pages = Array.from({ length: 10 }, (_, page) => Array.from({ length: 50 }, (_, index) => managed(page * 50 + index)));
    await start(pages, () => undefined);
    cache = new ServiceAccountCache(client, undefined, cap);
    await cache.until((each) => each.stoppedBy !== undefined);
    expect(cache.stoppedBy?.name).to.equal('CacheOverflowError');
    expect(cache.size).to.equal(0);
    expect(reads.filter((read) => read.startsWith('GET /api/v1/serviceaccounts')), 'pages read').to.have.length(cap / 50 + 1);
  });

  it('stops when a list never ends (empty pages, a continue token each)', async function () {
    this.timeout(30_000);
    await start(Array.from({ length: 10_000 }, () => []), () => undefined);
    cache = new ServiceAccountCache(client, undefined, 300);
    await cache.until((each) => each.stoppedBy !== undefined);
    expect(cache.stoppedBy?.name).to.equal('CacheOverflowError');
    expect(reads.length, 'pages read').to.be.below(20);
  });
});
