// The HTTP server around the app: a client that sends its request slowly, or never
// finishes it, is cut off and the server keeps answering others.
import { expect } from 'chai';
import express from 'express';
import { connect } from 'node:net';
import { silentLogger } from '../../server/log.js';
import { startServer, type RunningServer } from '../../server/server.js';

describe('HTTP server limits', function () {
  let running: RunningServer;

  before(async function () {
    const app = express();
    app.get('/healthz', (_req, res) => {
      res.json({ status: 'ok' });
    });
    app.post('/sync', express.json(), (_req, res) => {
      res.json({});
    });
    // A cut-off body reaches the error handler as an aborted request: answer nothing, log nothing.
    app.use((_error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.destroy();
    });
    running = await startServer(app, {
      port: 0, host: '127.0.0.1', shutdownTimeoutMs: 1_000, log: silentLogger,
      clientTimeouts: { headersMs: 500, requestMs: 1_000, keepAliveMs: 1_000 },
    });
  });

  after(async function () {
    await running.stop();
  });

  /** Opens a connection, writes `partial`, and reports what the server did within waitMs. */
  function stall(partial: string, waitMs: number): Promise<string> {
    return new Promise((resolve) => {
      const socket = connect(running.port, '127.0.0.1', () => socket.write(partial));
      let answer = '';
      socket.on('data', (chunk) => (answer += chunk.toString()));
      socket.on('close', () => resolve(answer ? `answered ${answer.split('\r\n')[0]}` : 'closed'));
      setTimeout(() => {
        resolve('still open');
        socket.destroy();
      }, waitMs);
    });
  }

  it('cuts off a client whose headers never finish', async function () {
    expect(await stall('POST /sync HTTP/1.1\r\nHost: x\r\n', 3_000)).to.match(/^(closed|answered HTTP\/1.1 408)/);
  });

  it('cuts off a client whose body never finishes', async function () {
    const headers = 'POST /sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"parent":';
    expect(await stall(headers, 4_000)).to.match(/^(closed|answered HTTP\/1.1 408)/);
  });

  it('keeps answering other clients meanwhile', async function () {
    const stalled = stall('POST /sync HTTP/1.1\r\nHost: x\r\n', 2_000);
    const res = await fetch(`http://127.0.0.1:${running.port}/healthz`);
    expect(res.status).to.equal(200);
    await stalled;
  });
});
