// The watch loop's client-go semantics that need a server misbehaving on cue: paged lists and
// a continue token that expires between pages, against a local HTTP server (the faults that
// real API servers show are in spec/reliability/transport.e2e.spec.ts).
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeRestClient } from '../../server/kube/rest.js';
import { listPageSize, relistDelayMs, WatchedCache, type WatchedObject } from '../../server/kube/watched-cache.js';

class Cache extends WatchedCache<WatchedObject> {
  constructor(client: KubeRestClient) {
    super(client, '/api/v1/configmaps?labelSelector=a%3Db', (object) => object);
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

describe('WatchedCache lists', function () {
  let server: Server;
  let client: KubeRestClient;
  let cache: Cache | undefined;
  afterEach(async function () {
    cache?.close();
    client?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('page by page (limit, continue), starting over when the continue token has expired (410)', async function () {
    const lists: string[] = [];
    let expireOnce = true;
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      res.setHeader('Content-Type', 'application/json');
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
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = await KubeRestClient.create({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, { timeoutMs: 2_000 });
    cache = new Cache(client);
    await cache.until((each) => each.isSynced);
    expect(lists).to.deep.equal([`${listPageSize} -`, `${listPageSize} page2`, `${listPageSize} -`, `${listPageSize} page2`]);
    expect(cache.size).to.equal(2);
    expect(cache.lookup('ns', 'item-2')).to.deep.equal({ metadata: { namespace: 'ns', name: 'item-2' } });
  });
});
