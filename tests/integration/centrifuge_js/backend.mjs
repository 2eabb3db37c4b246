// A backend for the proxy tests (issue 16, part 3): a real node HTTP/1.1
// server with keep-alive, one path per proxy kind (/connect, /refresh,
// /subscribe, /publish, /rpc). Each request is logged with its parsed body
// and answered by the test's `answer(kind, body)`, which returns one of
//   { json }                    200 with that JSON
//   { status, text }            any status with a raw body (garbage)
//   { delay, ...another }       the same, `delay` ms later (a timeout)
//   { hang: true }              never answered (the socket stays open)
//   { destroy: true }           the connection is cut without an answer
// die() closes the listener and every connection (the backend is gone:
// connection refused); start() again on the same port brings it back.
import http from 'node:http';
import { once } from 'node:events';

export class Backend {
  constructor(answer) {
    this.answer = answer;
    this.requests = [];
    this.sockets = new Set();
    this.port = 0;
  }

  count(kind) {
    return this.requests.filter((r) => r.kind === kind).length;
  }

  async start() {
    this.server = http.createServer({ keepAlive: true }, (req, res) => {
      let raw = '';
      req.on('data', (d) => { raw += d; });
      req.on('end', () => {
        const kind = req.url.replace(/^\//, '');
        let body;
        try { body = JSON.parse(raw); } catch { body = { unparsable: raw }; }
        this.requests.push({ kind, body, headers: req.headers });
        this._reply(res, req, this.answer(kind, body) ?? { json: {} });
      });
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  _reply(res, req, a) {
    if (a.delay) {
      const { delay, ...rest } = a;
      setTimeout(() => this._reply(res, req, rest), delay);
      return;
    }
    if (a.hang) return;
    if (a.destroy) {
      req.socket.destroy();
      return;
    }
    if (res.destroyed || res.writableEnded) return;
    if (a.json !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(a.json));
    } else {
      res.writeHead(a.status ?? 200, { 'content-type': 'text/plain' });
      res.end(a.text ?? '');
    }
  }

  async die() {
    if (!this.server) return;
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
    this.server = null;
  }
}
