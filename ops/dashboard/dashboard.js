// Switchboard ops dashboard. Polls GET stats (the same origin, relative URL)
// once a second, keeps the last 15 minutes of samples in memory and draws
// them with uPlot (served next to this file). Counters become rates from the
// difference between successive polls; a counter that goes back (a restart)
// gives a gap, not a negative rate. Plain script: no build step, no module
// loader, no external resource.
(function () {
  "use strict";

  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 3000;
  const KEEP_POINTS = 900;       // 15 minutes at one poll a second
  const LATENCY_WINDOW = 10;     // latency percentiles over the last 10 polls
  const STALE_MS = 3500;         // no answer for this long: "stale"
  const CHART_HEIGHT = 180;

  const TOTAL_COLOR = "#e8edf4";
  const COLORS = ["#5cb8ff", "#f2b84b", "#4cc38a", "#c586ff", "#ff8a65", "#4dd0e1",
    "#f06292", "#aed581", "#9fa8da", "#ffd54f", "#80cbc4", "#bcaaa4"];
  const BAD_COLOR = "#ff6b6b";
  const AXIS = "#8b97a8";
  const GRID = "rgba(139, 151, 168, 0.14)";

  // ------------------------------------------------------------ formatting

  function fmtInt(n) {
    return n == null || !isFinite(n) ? "–" : Math.round(n).toLocaleString("en-US");
  }

  function trim(x, digits) {
    return x.toFixed(digits).replace(/\.0+$/, "").replace(/(\.\d*?)0+$/, "$1");
  }

  // 0.25, 12, 1.2k, 3.4M: for rates and counts on axes and tiles.
  function fmtSI(n) {
    if (n == null || !isFinite(n)) return "–";
    const a = Math.abs(n);
    if (a >= 1e9) return trim(n / 1e9, 2) + "G";
    if (a >= 1e6) return trim(n / 1e6, 2) + "M";
    if (a >= 1e4) return trim(n / 1e3, 1) + "k";
    if (a >= 100) return Math.round(n).toString();
    if (a >= 10) return trim(n, 1);
    if (a === 0) return "0";
    return trim(n, 2);
  }

  function fmtBytes(n) {
    if (n == null || !isFinite(n)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    if (i === 0) return (Number.isInteger(v) ? v.toString() : trim(v, 1)) + " B";
    return trim(v, Math.abs(v) >= 100 ? 0 : 1) + " " + units[i];
  }

  function fmtByteRate(n) {
    return n == null || !isFinite(n) ? "–" : fmtBytes(n) + "/s";
  }

  function fmtMicros(us) {
    if (us == null || !isFinite(us)) return "–";
    if (us >= 1e6) return trim(us / 1e6, 2) + " s";
    if (us >= 1e3) return trim(us / 1e3, 1) + " ms";
    return Math.round(us) + " µs";
  }

  function fmtDuration(s) {
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  // ------------------------------------------------------------ reading /stats

  function sum(arr) {
    let t = 0;
    for (const v of arr) {
      if (v == null) return null;
      t += v;
    }
    return t;
  }

  function shardsOf(stats) {
    return Array.isArray(stats.per_shard) ? stats.per_shard : [];
  }

  function isCentrifuge(stats) {
    const s = shardsOf(stats);
    return s.length > 0 && s[0].routing != null;
  }

  function apiMethods(stats) {
    const api = stats.api || {};
    return Object.keys(api).filter((k) => api[k] && typeof api[k] === "object" && "ok" in api[k]);
  }

  function endReasons(stats) {
    return Object.keys(stats.ended || {});
  }

  function uptimeSeconds(stats) {
    for (const k of ["uptime_s", "uptime_seconds", "uptime"]) {
      if (typeof stats[k] === "number") return stats[k];
    }
    return null;
  }

  // Per-second rate of a counter between two polls; null when there is no
  // previous value or the counter went back (a restart).
  function rate(cur, prev, dt) {
    if (cur == null || prev == null || !(dt > 0) || cur < prev) return null;
    return (cur - prev) / dt;
  }

  // Like the gateway's bucket_quantile: the upper bound of the bucket that
  // holds the q-th observation; past the last bound: last bound + 1.
  function bucketQuantile(bounds, counts, q) {
    let total = 0;
    for (const c of counts) total += c;
    if (total === 0) return null;
    let rank = Math.floor(q * total + 0.5);
    if (rank === 0) rank = 1;
    let seen = 0;
    for (let i = 0; i < bounds.length; i++) {
      seen += counts[i];
      if (seen >= rank) return bounds[i];
    }
    return bounds[bounds.length - 1] + 1;
  }

  // ------------------------------------------------------------ chart layout

  function shardSeries(stats, prefix) {
    const out = [{ key: prefix + ".total", label: "total", color: TOTAL_COLOR, width: 2 }];
    shardsOf(stats).forEach((s, i) => {
      out.push({ key: prefix + ".s" + s.id, label: "shard " + s.id, color: COLORS[i % COLORS.length],
        dash: i >= COLORS.length ? [6, 3] : undefined });
    });
    return out;
  }

  function chartDefs(stats) {
    const defs = [];
    const centrifuge = isCentrifuge(stats);
    defs.push({ id: "connections", title: "Connections", note: "open + handshaking, total and per shard",
      fmt: fmtSI, series: shardSeries(stats, "conn") });
    defs.push({ id: "handshakes", title: "Handshakes/s", note: "successful WebSocket upgrades (upgrades counter)",
      fmt: fmtSI, series: shardSeries(stats, "hs") });
    defs.push({ id: "deliveries", title: "Deliveries/s",
      note: centrifuge ? "publication frames queued to local subscribers (routing.deliveries)"
        : "no routing in echo mode",
      fmt: fmtSI, series: shardSeries(stats, "del") });
    defs.push({ id: "messages", title: "Messages in/s", note: "complete data messages from clients",
      fmt: fmtSI, series: shardSeries(stats, "msg") });
    defs.push({ id: "bytes-in", title: "Bytes in/s", note: "read from client sockets",
      fmt: fmtBytes, legendFmt: fmtByteRate, emptyMax: 1024, series: shardSeries(stats, "bin") });
    defs.push({ id: "bytes-out", title: "Bytes out/s", note: "written to client sockets",
      fmt: fmtBytes, legendFmt: fmtByteRate, emptyMax: 1024, series: shardSeries(stats, "bout") });
    const mem = [{ key: "mem.rss", label: "RSS", color: TOTAL_COLOR, width: 2 }];
    if (stats.memory && stats.memory.jemalloc) {
      mem.push({ key: "mem.alloc", label: "jemalloc allocated", color: COLORS[0] });
      mem.push({ key: "mem.resident", label: "jemalloc resident", color: COLORS[1] });
    }
    defs.push({ id: "memory", title: "Memory", note: "whole process", fmt: fmtBytes, emptyMax: 1 << 20,
      series: mem });
    const mpc = [{ key: "mpc.rss", label: "RSS / connection", color: TOTAL_COLOR, width: 2 }];
    if (stats.memory && stats.memory.jemalloc) {
      mpc.push({ key: "mpc.alloc", label: "jemalloc allocated / connection", color: COLORS[0] });
    }
    defs.push({ id: "memory-per-connection", title: "Memory per connection",
      note: "process figures divided by connections (includes the fixed base: meaningful with many connections)",
      fmt: fmtBytes, emptyMax: 1024, series: mpc });
    const reasons = endReasons(stats).map((r, i) => r === "slow_consumer"
      ? { key: "end." + r, label: r, color: BAD_COLOR, width: 2.5 }
      : { key: "end." + r, label: r, color: COLORS[(i + 2) % COLORS.length] });
    defs.push({ id: "disconnects", title: "Disconnects/s by reason",
      note: "sessions ended, all shards; slow_consumer in red", fmt: fmtSI, series: reasons });
    const mesh = [
      { key: "mesh.def.total", label: "deferred (total)", color: TOTAL_COLOR, width: 2 },
      { key: "mesh.shed.total", label: "shed (total)", color: BAD_COLOR, width: 2.5 },
    ];
    shardsOf(stats).forEach((s, i) => {
      mesh.push({ key: "mesh.def.s" + s.id, label: "deferred shard " + s.id, color: COLORS[i % COLORS.length] });
      mesh.push({ key: "mesh.shed.s" + s.id, label: "shed shard " + s.id, color: COLORS[i % COLORS.length],
        dash: [5, 3] });
    });
    defs.push({ id: "mesh", title: "Mesh deferred/s and shed/s",
      note: "cross-shard tasks that waited for ring space / were dropped (shed should stay 0)",
      fmt: fmtSI, series: mesh });
    const api = apiMethods(stats).map((m, i) => ({ key: "api." + m, label: m, color: COLORS[i % COLORS.length],
      dash: i >= COLORS.length ? [6, 3] : undefined }));
    api.push({ key: "api.errors", label: "errors", color: BAD_COLOR, width: 2.5 });
    defs.push({ id: "api", title: "Server API requests/s",
      note: "POST /api/<method> (ok + error); errors: method errors, unauthorized, bad request, not found",
      fmt: fmtSI, series: api });
    if (stats.publish_to_write_us && Array.isArray(stats.publish_to_write_us.bounds)) {
      defs.push({ id: "latency", title: "Publish → write latency",
        note: "from a publication entering the gateway to the write that finished its frame on a subscriber's " +
          "socket; bucket upper bounds over the last " + LATENCY_WINDOW + " s",
        fmt: fmtMicros, emptyMax: 1000, series: [
          { key: "lat.p50", label: "p50", color: COLORS[2], width: 2 },
          { key: "lat.p90", label: "p90", color: COLORS[0] },
          { key: "lat.p99", label: "p99", color: COLORS[1], width: 2 },
          { key: "lat.p999", label: "p99.9", color: BAD_COLOR },
        ] });
    }
    return defs;
  }

  // What the charts look like depends on these; a change rebuilds them.
  function layoutKey(stats) {
    return JSON.stringify([shardsOf(stats).map((s) => s.id), isCentrifuge(stats), apiMethods(stats),
      endReasons(stats), !!(stats.memory && stats.memory.jemalloc), !!stats.publish_to_write_us]);
  }

  // ------------------------------------------------------------ one sample

  let latencyRing = [];  // bucket arrays of the last polls, oldest first

  function sample(stats, prev, dt) {
    const v = {};
    const shards = shardsOf(stats);
    const prevById = {};
    if (prev) for (const s of shardsOf(prev)) prevById[s.id] = s;
    const perShard = (prefix, get) => {
      const vals = shards.map((s) => {
        const x = get(s, prevById[s.id]);
        v[prefix + ".s" + s.id] = x;
        return x;
      });
      v[prefix + ".total"] = sum(vals);
    };
    const counterRate = (get) => (s, p) => (p ? rate(get(s), get(p), dt) : null);
    const routing = (field) => (s) => (s.routing ? s.routing[field] : null);

    perShard("conn", (s) => s.connections);
    perShard("hs", counterRate((s) => s.upgrades));
    perShard("del", counterRate(routing("deliveries")));
    perShard("msg", counterRate((s) => s.messages_in));
    perShard("bin", counterRate((s) => s.bytes_in));
    perShard("bout", counterRate((s) => s.bytes_out));
    perShard("mesh.def", counterRate((s) => s.mesh_deferred));
    perShard("mesh.shed", counterRate((s) => s.mesh_shed));

    const mem = stats.memory || {};
    const je = mem.jemalloc;
    v["mem.rss"] = mem.rss_bytes;
    v["mem.alloc"] = je ? je.allocated : null;
    v["mem.resident"] = je ? je.resident : null;
    const conns = stats.connections;
    v["mpc.rss"] = conns > 0 ? mem.rss_bytes / conns : null;
    v["mpc.alloc"] = conns > 0 && je ? je.allocated / conns : null;

    for (const r of endReasons(stats)) {
      v["end." + r] = prev && prev.ended ? rate(stats.ended[r], prev.ended[r], dt) : null;
    }

    const api = stats.api || {};
    const papi = prev ? prev.api || {} : null;
    let errs = 0, perrs = 0;
    for (const m of apiMethods(stats)) {
      const cur = api[m].ok + api[m].error;
      const before = papi && papi[m] ? papi[m].ok + papi[m].error : null;
      v["api." + m] = rate(cur, before, dt);
      errs += api[m].error;
      if (papi && papi[m]) perrs += papi[m].error;
    }
    for (const k of ["unauthorized", "bad_request", "not_found"]) {
      errs += api[k] || 0;
      if (papi) perrs += papi[k] || 0;
    }
    v["api.errors"] = papi ? rate(errs, perrs, dt) : null;

    const lat = stats.publish_to_write_us;
    if (lat && Array.isArray(lat.buckets)) {
      latencyRing.push(lat.buckets.slice());
      if (latencyRing.length > LATENCY_WINDOW + 1) latencyRing.shift();
      const oldest = latencyRing[0];
      const window = lat.buckets.map((c, i) => c - (latencyRing.length > 1 ? oldest[i] : 0));
      if (window.some((c) => c < 0)) {  // counters went back: start over
        latencyRing = [lat.buckets.slice()];
      } else if (latencyRing.length > 1) {
        v["lat.p50"] = bucketQuantile(lat.bounds, window, 0.50);
        v["lat.p90"] = bucketQuantile(lat.bounds, window, 0.90);
        v["lat.p99"] = bucketQuantile(lat.bounds, window, 0.99);
        v["lat.p999"] = bucketQuantile(lat.bounds, window, 0.999);
        v["lat.count"] = window.reduce((a, b) => a + b, 0);
      }
    }
    return v;
  }

  // ------------------------------------------------------------ charts

  const $ = (id) => document.getElementById(id);
  let charts = [];   // {def, plot, el, data}
  let times = [];
  let currentLayout = "";

  // From 0 up; a chart with nothing to show yet spans [0, emptyMax].
  function yRangeFor(emptyMax) {
    return (u, min, max) => (max == null || !isFinite(max) || max <= 0 ? [0, emptyMax] : [0, max * 1.12]);
  }

  function makePanel(parent, title, note, extraClass) {
    const panel = document.createElement("div");
    panel.className = "panel" + (extraClass ? " " + extraClass : "");
    const h = document.createElement("h2");
    h.textContent = title;
    panel.appendChild(h);
    const p = document.createElement("p");
    p.className = "desc";
    p.textContent = note;
    panel.appendChild(p);
    parent.appendChild(panel);
    return panel;
  }

  function buildCharts(stats) {
    const root = $("charts");
    for (const c of charts) c.plot.destroy();
    charts = [];
    times = [];
    latencyRing = [];
    root.textContent = "";
    for (const def of chartDefs(stats)) {
      const panel = makePanel(root, def.title, def.note);
      panel.id = "panel-" + def.id;
      const el = document.createElement("div");
      el.className = "chart";
      panel.appendChild(el);
      const legendFmt = def.legendFmt || def.fmt;
      const data = [times].concat(def.series.map(() => []));
      const opts = {
        width: Math.max(300, el.clientWidth || 500),
        height: CHART_HEIGHT,
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        legend: { live: true },
        scales: { x: { time: true }, y: { range: yRangeFor(def.emptyMax || 1) } },
        axes: [
          { stroke: AXIS, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 } },
          { stroke: AXIS, grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1 }, size: 70,
            values: (u, vals) => vals.map((x) => def.fmt(x)) },
        ],
        series: [{ value: (u, x) => (x == null ? "–" : new Date(x * 1000).toLocaleTimeString()) }].concat(
          def.series.map((s) => ({
            label: s.label, stroke: s.color, width: s.width || 1.5, dash: s.dash, spanGaps: false,
            points: { show: false }, value: (u, x) => (x == null ? "–" : legendFmt(x)),
          }))),
      };
      const plot = new uPlot(opts, data, el);
      charts.push({ def, plot, el, data });
    }
    // Not measured by the gateway: said so, rather than drawn from nothing.
    const un = makePanel(root, "Latency percentiles: connect, handshake, client round trip",
      "the gateway keeps no histogram for these", "unmeasured");
    un.id = "panel-latency-unmeasured";
    const box = document.createElement("div");
    box.className = "unmeasured-box";
    const strong = document.createElement("strong");
    strong.textContent = "NOT MEASURED YET";
    box.appendChild(strong);
    const text = document.createElement("span");
    text.textContent = stats.publish_to_write_us
      ? "Only publish → write latency is measured (chart above). Connect/handshake time and client " +
        "round-trip latency have no histogram in the gateway; measure them from the client side (bench/swload)."
      : "This gateway reports no latency histogram in /stats. Measure latency from the client side " +
        "(bench/swload) until it does.";
    box.appendChild(text);
    un.appendChild(box);
    currentLayout = layoutKey(stats);
  }

  function pushSample(t, v) {
    times.push(t);
    for (const c of charts) {
      c.def.series.forEach((s, i) => {
        const x = v[s.key];
        c.data[i + 1].push(x == null || !isFinite(x) ? null : x);
      });
    }
    if (times.length > KEEP_POINTS) {
      times.shift();
      for (const c of charts) for (let i = 1; i < c.data.length; i++) c.data[i].shift();
    }
    for (const c of charts) {
      c.plot.setData(c.data);
      // Not hovering: the legend shows the newest values.
      if (!(c.plot.cursor.left >= 0)) c.plot.setLegend({ idx: times.length - 1 });
    }
  }

  function resizeCharts() {
    for (const c of charts) c.plot.setSize({ width: Math.max(300, c.el.clientWidth), height: CHART_HEIGHT });
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeCharts, 100);
  });

  // ------------------------------------------------------------ header and tables

  function setText(id, text) {
    const el = $(id);
    if (el) el.textContent = text;
  }

  function setStatus(kind, text) {
    const el = $("status");
    el.className = "status status-" + kind;
    el.textContent = text;
  }

  function notice(text) {
    const el = $("notice");
    el.hidden = !text;
    el.textContent = text || "";
  }

  function row(tbody, cells, cls) {
    const tr = document.createElement("tr");
    if (cls) tr.className = cls;
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }

  function updateHeader(stats, v) {
    const shards = shardsOf(stats);
    const total = $("total-connections");
    total.textContent = fmtInt(stats.connections);
    total.dataset.value = String(stats.connections);
    setText("connections-detail", fmtInt(stats.open) + " open · " + fmtInt(stats.handshaking) + " handshaking");
    setText("shards", fmtInt(stats.shards));
    if (shards.length > 0) {
      const c = shards.map((s) => s.connections);
      setText("shards-detail", "per shard " + fmtInt(Math.min(...c)) + " – " + fmtInt(Math.max(...c)));
    }
    setText("connection-capacity", fmtInt(stats.connection_capacity));
    setText("capacity-detail", stats.connection_capacity > 0
      ? trim(100 * stats.connections / stats.connection_capacity, 2) + "% in use" : "");
    const mem = stats.memory || {};
    setText("rss", fmtBytes(mem.rss_bytes));
    const parts = [];
    if (mem.jemalloc) parts.push("jemalloc " + fmtBytes(mem.jemalloc.allocated));
    if (stats.connections > 0) parts.push(fmtBytes(mem.rss_bytes / stats.connections) + "/conn");
    setText("rss-detail", parts.join(" · "));
    setText("handshakes-rate", fmtSI(v["hs.total"]));
    setText("handshakes-detail", fmtInt(sum(shards.map((s) => s.upgrades))) + " since start");
    if (isCentrifuge(stats)) {
      setText("deliveries-rate", fmtSI(v["del.total"]));
      setText("deliveries-detail", "messages in " + fmtSI(v["msg.total"]) + "/s");
    } else {
      setText("deliveries-rate", "n/a");
      setText("deliveries-detail", "echo mode: no routing");
    }
    const slow = (stats.ended || {}).slow_consumer || 0;
    setText("slow-consumers", fmtInt(slow));
    $("slow-consumers").classList.toggle("bad", slow > 0);
    const shed = sum(shards.map((s) => s.mesh_shed || 0)) || 0;
    setText("mesh-shed", fmtInt(shed));
    $("mesh-shed").classList.toggle("bad", shed > 0);
    const up = uptimeSeconds(stats);
    setText("uptime", up == null ? "n/a" : fmtDuration(up));
    setText("uptime-detail", up == null ? "not reported by /stats" : "since the gateway started");
    setText("mode", isCentrifuge(stats) ? "centrifuge mode" : "echo mode");
  }

  // With engine = "redis": the registry's nodes (this one marked) and this
  // node's connections to each Redis server.
  function updateCluster(stats) {
    const cluster = stats.cluster, redis = stats.redis;
    $("cluster-panel").hidden = !cluster && !redis;
    const nt = $("nodes-table").tBodies[0];
    nt.textContent = "";
    for (const n of (cluster && cluster.nodes) || []) {
      row(nt, [n.uid === cluster.node ? n.uid + " (this)" : n.uid, n.name, fmtInt(n.num_clients), fmtInt(n.num_users),
        fmtInt(n.num_subs), fmtInt(n.num_channels), fmtDuration(n.uptime), fmtBytes(n.process ? n.process.rss : 0)]);
    }
    const rt = $("redis-table").tBodies[0];
    rt.textContent = "";
    for (const r of (redis && redis.servers) || []) {
      row(rt, [r.address, r.up + " / " + r.connections, fmtInt(Math.max(0, r.connects - r.connections)),
        fmtInt(r.commands), fmtInt(r.failed), fmtInt(r.pending), fmtMicros(r.rtt_us.p50) + " / " + fmtMicros(r.rtt_us.p99)],
        r.up < r.connections ? "alarm" : "");
    }
  }

  function updateTables(stats, v) {
    updateCluster(stats);
    const ended = $("ended-table").tBodies[0];
    ended.textContent = "";
    for (const r of endReasons(stats)) {
      const n = stats.ended[r];
      const cls = n === 0 ? "zero" : (r === "slow_consumer" ? "alarm" : "");
      row(ended, [r, fmtInt(n), v["end." + r] == null ? "–" : fmtSI(v["end." + r]) + "/s"], cls);
    }
    const api = stats.api || {};
    const at = $("api-table").tBodies[0];
    at.textContent = "";
    for (const m of apiMethods(stats)) {
      row(at, [m, fmtInt(api[m].ok), fmtInt(api[m].error)],
        api[m].ok + api[m].error === 0 ? "zero" : (api[m].error > 0 ? "alarm" : ""));
    }
    for (const k of ["unauthorized", "bad_request", "not_found", "pending"]) {
      if (k in api) row(at, [k, fmtInt(api[k]), ""], api[k] === 0 ? "zero" : (k === "pending" ? "" : "alarm"));
    }
    const st = $("shard-table");
    const head = st.tHead;
    if (!head.rows.length) {
      const tr = document.createElement("tr");
      for (const h of ["shard", "connections", "open", "handshaking", "accepted", "upgrades", "messages in",
        "bytes in", "bytes out", "queued now", "deliveries", "fd capacity", "mesh sent", "mesh deferred",
        "mesh shed"]) {
        const th = document.createElement("th");
        th.textContent = h;
        tr.appendChild(th);
      }
      head.appendChild(tr);
    }
    const body = st.tBodies[0];
    body.textContent = "";
    for (const s of shardsOf(stats)) {
      row(body, [String(s.id), fmtInt(s.connections), fmtInt(s.open), fmtInt(s.handshaking), fmtInt(s.accepted),
        fmtInt(s.upgrades), fmtInt(s.messages_in), fmtBytes(s.bytes_in), fmtBytes(s.bytes_out),
        fmtBytes(s.queued_bytes), s.routing ? fmtInt(s.routing.deliveries) : "n/a", fmtInt(s.fd_capacity),
        fmtInt(s.mesh_sent), fmtInt(s.mesh_deferred), fmtInt(s.mesh_shed)],
      s.mesh_shed > 0 ? "alarm" : "");
    }
  }

  // ------------------------------------------------------------ polling

  let prevStats = null;
  let prevAt = 0;
  let lastOkAt = 0;
  let restartedAt = null;

  function onStats(stats, now) {
    if (layoutKey(stats) !== currentLayout) {
      if (currentLayout) restartedAt = new Date(now);
      buildCharts(stats);
      prevStats = null;
    } else if (prevStats && stats.accepted < prevStats.accepted) {
      restartedAt = new Date(now);  // same layout, counters went back
    }
    const dt = prevStats ? (now - prevAt) / 1000 : 0;
    const v = sample(stats, prevStats, dt);
    pushSample(now / 1000, v);
    updateHeader(stats, v);
    updateTables(stats, v);
    prevStats = stats;
    prevAt = now;
    lastOkAt = now;
    notice(restartedAt ? "The gateway restarted (counters went back) at " + restartedAt.toLocaleTimeString() +
      ": rates have a gap there." : "");
  }

  async function poll() {
    const started = Date.now();
    const ctl = typeof AbortController === "function" ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS) : null;
    try {
      const res = await fetch("stats", { cache: "no-store", signal: ctl ? ctl.signal : undefined });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const stats = await res.json();
      onStats(stats, Date.now());
      setStatus("ok", "live");
      setText("updated", "updated " + new Date().toLocaleTimeString());
    } catch (e) {
      setStatus("bad", "no answer from /stats" + (e && e.message ? ": " + e.message : ""));
    } finally {
      if (timer) clearTimeout(timer);
      setTimeout(poll, Math.max(100, POLL_MS - (Date.now() - started)));
    }
  }

  setInterval(() => {
    if (lastOkAt && Date.now() - lastOkAt > STALE_MS) {
      setStatus("bad", "stale: last answer " + Math.round((Date.now() - lastOkAt) / 1000) + " s ago");
    }
  }, 1000);

  setText("where", location.host);
  if (typeof uPlot !== "function") {
    setStatus("bad", "uplot.min.js did not load");
  } else {
    poll();
  }
})();
