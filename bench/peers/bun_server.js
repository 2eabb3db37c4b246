// Bun peer for Switchboard's side-by-side benchmarks (bench/scenarios/peers.sh):
// the same pub/sub shape with Bun's built-in WebSocket server, driven by
// `swload --proto raw`. Text protocol, one command per message:
//   "sub <topic>"            subscribe this socket to topic; reply "ok"
//   "pub <topic> <payload>"  server.publish(topic, payload): every subscriber,
//                            the sender included (as Centrifuge delivers to a
//                            subscribed publisher)
// Prints "listening <port>" on stdout once ready.
//
// usage: bun bench/peers/bun_server.js --port P [--host 127.0.0.1]

function flag(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const server = Bun.serve({
  hostname: flag("--host", "127.0.0.1"),
  port: Number(flag("--port", "0")),
  fetch(req, srv) {
    if (srv.upgrade(req)) return undefined;
    return new Response("WebSocket only\n", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    message(ws, msg) {
      const text = typeof msg === "string" ? msg : msg.toString();
      if (text.startsWith("pub ")) {
        const sp = text.indexOf(" ", 4);
        if (sp > 4) server.publish(text.slice(4, sp), text.slice(sp + 1));
      } else if (text.startsWith("sub ")) {
        ws.subscribe(text.slice(4));
        ws.send("ok");
      }
    },
  },
});

console.log(`listening ${server.port}`);
