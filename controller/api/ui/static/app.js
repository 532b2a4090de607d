// The live topology page (GET /ui): reads the REST API every few seconds and
// draws hosts (boxes), their br-int datapaths, tenants' ports (coloured by
// tenant), uplink/tunnel/external ports, fabric switches and the tunnel mesh.
// Up/down by colour: green = connected/up, red = disconnected/down.
//
// Once a refresh is drawn, #summary carries data-rendered (refreshes drawn),
// data-nodes, data-hosts, data-hosts-up, data-ports, data-ports-up,
// data-switches (fabric), data-tunnels and data-links (edges drawn), and
// document.title says how many hosts and ports are shown: the tests read these.
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var PERIOD = Math.max(1, Number(params.get("refresh")) || 3);
  // The page lives at <base>/ui or <base>/ui/: the API is at <base>/v1.
  var BASE = location.pathname.replace(/\/ui(\/(index\.html)?)?$/, "");
  // With authentication on, open the page as /ui#token=<admin token>: a
  // fragment never leaves the browser (not in server logs, not in Referer);
  // it is kept in sessionStorage for this tab and removed from the address bar.
  var TOKEN = (function () {
    var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem("vpc-token", decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem("vpc-token");
  })();
  var PALETTE = ["#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1",
                 "#c0ca33", "#6d4c41", "#d81b60", "#3949ab", "#00897b", "#f4511e"];

  var $ = function (id) { return document.getElementById(id); };
  var last = null;          // the last data loaded, to redraw on a toggle
  var drawn = 0;
  var laidOut = false;
  var lastAlias = {};       // topology node id -> drawn node id (trace.js maps paths)
  var hooks = [];           // called after every draw (trace.js re-applies its path)

  $("period").textContent = String(PERIOD);
  $("metrics-link").href = BASE + "/metrics";

  var cy = cytoscape({
    container: $("graph"),
    wheelSensitivity: 0.3,
    minZoom: 0.2,
    maxZoom: 4,
    style: [
      { selector: "node", style: {
          "label": "data(label)", "font-size": 10, "text-wrap": "wrap", "color": "#263238",
          "text-valign": "bottom", "text-margin-y": 3 } },
      { selector: "node[lv]", style: { "text-valign": "data(lv)", "text-halign": "data(lh)",
                                       "text-margin-x": 0, "text-margin-y": 0 } },
      { selector: "node[lv = 'top']", style: { "text-margin-y": -3 } },
      { selector: "node[lv = 'bottom']", style: { "text-margin-y": 3 } },
      { selector: "node[lh = 'right']", style: { "text-margin-x": 4 } },
      { selector: "node[lh = 'left']", style: { "text-margin-x": -4 } },
      { selector: "node.host", style: {
          "shape": "round-rectangle", "background-color": "#e8f5e9", "background-opacity": 0.7,
          "border-width": 3, "border-color": "#2e7d32", "padding": 16,
          "text-valign": "top", "text-halign": "center", "text-margin-y": -4,
          "font-size": 15, "font-weight": "bold" } },
      { selector: "node.host.down", style: { "background-color": "#fdecea", "border-color": "#c62828" } },
      { selector: "node.dp", style: {
          "shape": "round-rectangle", "width": 54, "height": 24, "background-color": "#37474f",
          "color": "#ffffff", "text-valign": "center", "text-margin-y": 0, "font-size": 11 } },
      { selector: "node.dp.down", style: { "background-color": "#c62828" } },
      { selector: "node.fabric", style: {
          "shape": "diamond", "width": 38, "height": 38, "background-color": "#5e35b1" } },
      { selector: "node.fabric.down", style: { "background-color": "#c62828" } },
      { selector: "node.infra", style: {
          "shape": "rectangle", "width": 12, "height": 12, "background-color": "#b0bec5",
          "border-width": 1, "border-color": "#78909c", "font-size": 10, "color": "#56616c" } },
      { selector: "node.infra.ext", style: { "background-color": "#ffb74d", "border-color": "#ef6c00" } },
      { selector: "node.tport", style: {
          "shape": "ellipse", "width": 22, "height": 22, "background-color": "data(color)",
          "border-width": 3, "border-color": "#2e7d32", "font-size": 12 } },
      { selector: "node.tport.down", style: {
          "background-color": "#eceff1", "border-color": "#c62828", "border-style": "dashed" } },
      { selector: "edge", style: { "width": 1.5, "line-color": "#90a4ae", "curve-style": "bezier" } },
      { selector: "edge.tunnel", style: { "width": 2.5, "line-color": "#0277bd", "line-style": "dashed" } },
      { selector: "edge.link", style: { "width": 2, "line-color": "#5e35b1" } },
      { selector: "edge.link.tree", style: { "width": 4 } },
      { selector: "edge.link.standby", style: { "line-style": "dashed", "opacity": 0.6 } },
      { selector: "edge.down", style: { "line-color": "#c62828", "line-style": "dotted" } },
      { selector: ":selected", style: { "overlay-color": "#ffca28", "overlay-opacity": 0.35 } }
    ]
  });

  cy.on("tap", "node, edge", function (ev) {
    $("details").textContent = JSON.stringify(ev.target.data("raw") || ev.target.data(), null, 1);
  });
  cy.on("tap", function (ev) {
    if (ev.target === cy) { $("details").textContent = "click a node or an edge"; }
  });

  function getJSON(path) {
    var headers = { "Accept": "application/json" };
    if (TOKEN) { headers["Authorization"] = "Bearer " + TOKEN; }
    return fetch(BASE + path, { cache: "no-store", headers: headers })
      .then(function (r) {
        if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
        return r.json();
      });
  }

  function load() {
    return Promise.all([getJSON("/v1/topology"), getJSON("/v1/hosts"), getJSON("/v1/tenants")])
      .then(function (res) {
        var data = { topo: res[0], hosts: res[1], tenants: res[2], ports: {} };
        return Promise.all(data.tenants.map(function (t) {
          // A tenant deleted since the list: no ports, not an error.
          return getJSON("/v1/tenants/" + encodeURIComponent(t.name) + "/ports")
            .then(function (ps) { data.ports[t.name] = ps; },
                  function () { data.ports[t.name] = []; });
        })).then(function () { return data; });
      });
  }

  // A tenant named like a colour gets that colour (the demo's red, blue,
  // green, gold); the others take the palette in tenant-id order.
  var NAMED = { red: "#e53935", blue: "#1e88e5", green: "#43a047", orange: "#fb8c00",
                purple: "#8e24aa", cyan: "#00acc1", teal: "#00897b", brown: "#6d4c41",
                pink: "#d81b60", indigo: "#3949ab", gold: "#f9a825", yellow: "#fdd835",
                lime: "#c0ca33", grey: "#757575", gray: "#757575", black: "#212121" };
  var colors = {};
  function assignColors(tenants) {
    colors = {};
    var used = {};
    tenants.forEach(function (t) {
      var c = NAMED[String(t.name).toLowerCase()];
      if (c) { colors[t.name] = c; used[c] = true; }
    });
    var free = PALETTE.filter(function (c) { return !used[c]; });
    if (!free.length) { free = PALETTE; }
    var next = 0;
    tenants.slice().sort(function (a, b) { return (a.id || 0) - (b.id || 0); })
      .forEach(function (t) {
        if (!colors[t.name]) { colors[t.name] = free[next++ % free.length]; }
      });
  }
  function tenantColor(t) { return colors[t.name] || PALETTE[0]; }
  function shortDpid(d) { return "0x" + String(d).replace(/^0+(?=.)/, ""); }

  // data -> {elements: [...], counts: {...}}; pure, so a redraw needs no fetch.
  function build(data, showInfra) {
    assignColors(data.tenants || []);
    var topo = data.topo || {};
    var tnodes = topo.nodes || [];
    var links = topo.links || topo.edges || [];
    var byId = {}, hostByDpid = {}, hostByName = {}, info = {};
    var nodes = [], edges = [], alias = {}, seen = {};
    var counts = { hosts: 0, hostsUp: 0, datapaths: 0, ports: 0, portsUp: 0 };
    tnodes.forEach(function (n) { byId[n.id] = n; });
    var linked = {};      // datapaths with a link other than their ports
    links.forEach(function (l) {
      if (l.kind === "bridge" || l.kind === "port" || l.kind === "tunnel") { return; }
      [l.source, l.target].forEach(function (end) {
        var e = byId[end];
        if (e) { linked[e.kind === "port" ? "dp:" + e.dpid : end] = true; }
      });
    });
    tnodes.forEach(function (n) {
      if (n.kind === "host") { hostByDpid[n.dpid] = n; hostByName[n.name] = n; }
    });
    (data.hosts || []).forEach(function (h) { info[h.name] = h; });

    function addNode(el) { if (!seen[el.data.id]) { seen[el.data.id] = true; nodes.push(el); } }
    function addEdge(a, b, cls, raw, key) {
      if (!seen[a] || !seen[b] || a === b) { return; }
      var id = "e:" + [a, b].sort().join("|") + ":" + (key || cls);
      if (seen[id]) { return; }
      seen[id] = true;
      edges.push({ group: "edges", data: { id: id, source: a, target: b, raw: raw }, classes: cls });
    }

    // hosts: compound boxes around their br-int and ports
    tnodes.forEach(function (n) {
      if (n.kind !== "host") { return; }
      var dp = byId["dp:" + n.dpid];
      var up = !!(dp && dp.connected);
      var h = info[n.name] || {};
      counts.hosts += 1;
      counts.hostsUp += up ? 1 : 0;
      addNode({ group: "nodes", classes: "host " + (up ? "up" : "down"),
                data: { id: n.id, label: n.name + "  " + (n.tunnel_ip || ""),
                        raw: Object.assign({}, n, h, { connected: up }) } });
    });
    // datapaths: a host's br-int inside its box; the others are fabric switches
    tnodes.forEach(function (n) {
      if (n.kind !== "datapath") { return; }
      var host = hostByDpid[n.dpid];
      var state = n.connected ? "up" : "down";
      if (host || n.connected || linked[n.id]) { counts.datapaths += 1; }
      if (host) {
        addNode({ group: "nodes", classes: "dp " + state,
                  data: { id: n.id, parent: host.id, label: "br-int", raw: n } });
      } else if (n.connected || linked[n.id]) {
        // (a datapath with no host, no session and no links is a leftover
        // of a deleted host: not drawn)
        addNode({ group: "nodes", classes: "fabric " + state,
                  data: { id: n.id, label: "switch " + shortDpid(n.dpid), raw: n } });
      }
    });
    // tenants' ports, coloured by tenant; down = its host is not connected, or no
    // OVS port of that name, or no link (the API's status_reason says which: it is
    // the node's tooltip and shows in the details panel on a click)
    (data.tenants || []).forEach(function (t) {
      (data.ports[t.name] || []).forEach(function (p) {
        var host = hostByName[p.host];
        var up = p.status === "up";
        counts.ports += 1;
        counts.portsUp += up ? 1 : 0;
        var id = "tport:" + p.id;
        var el = { group: "nodes", classes: "tport " + (up ? "up" : "down"),
                   data: { id: id, label: t.name + " " + p.ip + (up ? "" : " (down)"),
                           color: tenantColor(t), tenant: t.name, raw: p,
                           reason: p.status_reason || "" } };
        if (host) {
          el.data.parent = host.id;
          alias["port:" + host.dpid + ":" + p.port] = id;
        }
        addNode(el);
        if (host) { addEdge("dp:" + host.dpid, id, up ? "port" : "port down", null); }
      });
    });
    // the other ports of a datapath: uplink, tunnels, external (a fabric
    // switch's ports collapse into the switch)
    tnodes.forEach(function (n) {
      if (n.kind !== "port" || alias[n.id]) { return; }
      var dpNode = "dp:" + n.dpid;
      var host = hostByDpid[n.dpid];
      // a fabric switch's ports, hidden ones and br-int's own LOCAL port
      // stand for their datapath
      if (!host || !showInfra || n.ofport === 4294967294) { alias[n.id] = dpNode; return; }
      var h = info[host.name] || {};
      var ext = h.external_port && h.external_port === n.name;
      addNode({ group: "nodes", classes: "infra" + (ext ? " ext" : ""),
                data: { id: n.id, parent: host.id,
                        label: n.name + (ext && h.external_ip ? " " + h.external_ip : ""), raw: n } });
      alias[n.id] = n.id;
      addEdge(dpNode, n.id, "port", null);
    });
    // edges from the graph: the tunnel mesh between hosts, and any other
    // kind (fabric links, found by LLDP) between whatever their ends became
    links.forEach(function (l) {
      if (l.kind === "bridge" || l.kind === "port") { return; }
      var a = alias[l.source] || l.source, b = alias[l.target] || l.target;
      if (l.kind === "tunnel") { addEdge(a, b, "tunnel", l); return; }
      // a physical link (LLDP): down, standby (a host's second uplink), or
      // part of the flood tree; parallel links stay separate edges
      var cls = "link" + (l.up === false ? " down" : "") +
        (l.attachment === "standby" ? " standby" : "") + (l.in_tree ? " tree" : "");
      addEdge(a, b, cls, l, "link:" + [l.source, l.target].sort().join("|"));
    });
    lastAlias = alias;
    return { elements: nodes.concat(edges), counts: counts };
  }

  function natural(a, b) {
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  // A fixed picture, the same for the same elements: hosts on a circle, each
  // host's ports on a ring around its br-int, uplink/tunnel ports facing the
  // middle (where the tunnel mesh and the fabric are), tenants' ports facing
  // out; fabric switches in the middle.
  function positions() {
    var pos = {};
    var hosts = cy.nodes(".host").sort(function (a, b) {
      return natural(a.data("raw").name, b.data("raw").name);
    });
    var rings = hosts.map(function (h) {
      var kids = h.children().not(".dp");
      return Math.max(100, kids.length * 64 / (2 * Math.PI));
    });
    var maxRing = Math.max.apply(null, [100].concat(rings));
    var n = hosts.length;
    // neighbours on the circle a box width (ring + labels) and a gap apart
    var R = n <= 1 ? 0 : (2 * maxRing + 200 + 140) / (2 * Math.sin(Math.PI / n));
    hosts.forEach(function (h, i) {
      var theta = -Math.PI / 2 + 2 * Math.PI * i / Math.max(n, 1);
      var cx = R * Math.cos(theta), cy0 = R * Math.sin(theta);
      var dp = h.children(".dp");
      dp.forEach(function (d) { pos[d.id()] = { x: cx, y: cy0 }; });
      var infra = h.children(".infra").sort(function (a, b) { return natural(a.data("label"), b.data("label")); });
      var ports = h.children(".tport").sort(function (a, b) {
        return natural(a.data("tenant") + " " + a.data("raw").ip, b.data("tenant") + " " + b.data("raw").ip);
      });
      var kids = infra.toArray().concat(ports.toArray());
      var k = kids.length, r = rings[i];
      var step = 2 * Math.PI / Math.max(k, 1);
      var inward = n <= 1 ? Math.PI / 2 : theta + Math.PI;
      var start = inward - (infra.length - 1) / 2 * step;
      kids.forEach(function (kid, j) {
        var a = start + j * step;
        pos[kid.id()] = { x: cx + r * Math.cos(a), y: cy0 + r * Math.sin(a) };
        // the label points away from br-int, so neighbours' labels do not meet
        var c = Math.cos(a), sn = Math.sin(a);
        kid.data({ lh: Math.abs(c) < 0.3 ? "center" : (c > 0 ? "right" : "left"),
                   lv: Math.abs(c) < 0.3 ? (sn > 0 ? "bottom" : "top") : "center" });
      });
    });
    var others = cy.nodes().filter(function (x) { return !x.isParent() && !x.isChild(); });
    var m = others.length;
    others.forEach(function (x, j) {
      var rr = m <= 1 ? 0 : Math.max(60, R * 0.3);
      var a = -Math.PI / 2 + 2 * Math.PI * j / Math.max(m, 1);
      pos[x.id()] = { x: rr * Math.cos(a), y: rr * Math.sin(a) };
    });
    return pos;
  }

  function legend(tenants, ports) {
    var ul = $("tenants");
    ul.textContent = "";
    if (!tenants.length) {
      var none = document.createElement("li");
      none.textContent = "none yet";
      ul.appendChild(none);
    }
    tenants.forEach(function (t) {
      var li = document.createElement("li");
      var sw = document.createElement("span");
      sw.className = "sw tenant";
      sw.style.background = tenantColor(t);
      var name = document.createElement("strong");
      name.textContent = t.name;
      var meta = document.createElement("span");
      meta.className = "tenant-meta";
      var n = (ports[t.name] || []).length;
      meta.textContent = t.network + " " + t.segment + ", " + n + " port" + (n === 1 ? "" : "s") +
        (t.subnets && t.subnets.length ? ", " + t.subnets.join(" ") : "") + (t.snat ? ", SNAT" : "");
      li.appendChild(sw);
      li.appendChild(name);
      li.appendChild(meta);
      ul.appendChild(li);
    });
  }

  function draw(data) {
    var built = build(data, $("show-infra").checked);
    var want = {};
    built.elements.forEach(function (el) { want[el.data.id] = el; });
    var structural = !laidOut;
    cy.batch(function () {
      cy.elements().forEach(function (el) {
        var w = want[el.id()];
        if (!w || (el.isNode() && (el.data("parent") || null) !== (w.data.parent || null))) {
          cy.remove(el);
          structural = true;
        }
      });
      built.elements.forEach(function (el) {
        var cur = cy.getElementById(el.data.id);
        if (cur.empty()) {
          cy.add(el);
          structural = true;
        } else {
          cur.data(el.data);
          cur.classes(el.classes);
        }
      });
    });
    if (structural) {
      var pos = positions();
      cy.layout({ name: "preset", animate: false, fit: true, padding: 40,
                  positions: function (n) { return pos[n.id()] || { x: 0, y: 0 }; } }).run();
      if (cy.zoom() > 1.6) {      // one small host: do not blow it up
        cy.zoom(1.6);
        cy.center();
      }
      laidOut = true;
    }
    legend(data.tenants || [], data.ports || {});
    var c = built.counts;
    drawn += 1;
    var s = $("summary");
    s.textContent = c.hosts + " hosts (" + c.hostsUp + " connected) \u00b7 " + c.datapaths +
      " datapaths \u00b7 " + (data.tenants || []).length + " tenants \u00b7 " + c.ports +
      " ports (" + c.portsUp + " up) \u00b7 updated " + new Date().toLocaleTimeString();
    s.dataset.rendered = String(drawn);
    s.dataset.nodes = String(cy.nodes().length);
    s.dataset.hosts = String(cy.nodes(".host").length);
    s.dataset.ports = String(cy.nodes(".tport").length);
    s.dataset.portsUp = String(cy.nodes(".tport.up").length);
    s.dataset.hostsUp = String(cy.nodes(".host.up").length);
    s.dataset.switches = String(cy.nodes(".fabric").length);
    s.dataset.tunnels = String(cy.edges(".tunnel").length);
    s.dataset.links = String(cy.edges(".link").length);
    document.title = "VPC topology: " + c.hosts + " hosts, " + c.ports + " ports";
    hooks.forEach(function (f) { f(); });
  }

  function refresh() {
    if ($("pause").checked) { setTimeout(refresh, PERIOD * 1000); return; }
    var e = $("error");
    load().then(function (data) {
      last = data;
      e.hidden = true;
      try {
        draw(data);
      } catch (err) {
        e.hidden = false;
        e.textContent = "drawing failed: " + err;
      }
    }, function (err) {
      e.hidden = false;
      e.textContent = "controller unreachable (" + err.message + "); showing the last picture";
    }).then(function () {
      setTimeout(refresh, PERIOD * 1000);
    });
  }

  // for trace.js: the graph, where the API is, and a hook after each draw
  window.vpcTopo = { cy: cy, base: BASE, token: TOKEN, drawn: function () { return drawn; },
                     node: function (id) { return lastAlias[id] || id; },
                     onDraw: function (f) { hooks.push(f); } };

  $("show-infra").addEventListener("change", function () {
    if (last) { draw(last); }
  });
  refresh();
}());
