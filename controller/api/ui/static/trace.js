// The trace on the topology page: POST /v1/tenants/{t}/trace (the form, or
// /ui?trace=TENANT&from=PORT&to=IP|PORT[&proto=tcp&dport=22]) and its path
// drawn over the picture: the nodes it passes in orange, arrows from hop to
// hop, the verdict in words.  #trace-verdict carries data-code,
// data-action and data-path (nodes highlighted) for the tests.
(function () {
  "use strict";
  var T = window.vpcTopo;
  if (!T) { return; }
  var cy = T.cy;
  var $ = function (id) { return document.getElementById(id); };
  var current = null;       // the last trace's answer, re-drawn after each refresh

  cy.style().selector("node.traced").style({
    "border-width": 5, "border-color": "#ff6f00", "border-style": "solid" })
    .selector("edge.trace").style({
      "width": 4, "line-color": "#ff6f00", "target-arrow-color": "#ff6f00",
      "target-arrow-shape": "triangle", "curve-style": "straight", "z-index": 10 })
    .selector("edge.trace.dropped").style({ "line-style": "dashed" }).update();

  function apply() {
    cy.batch(function () {
      cy.remove(cy.edges(".trace"));
      cy.nodes(".traced").removeClass("traced");
      if (!current) { return; }
      var ids = [];
      (current.path || []).forEach(function (p) {
        var id = T.node(p);
        if (!cy.getElementById(id).empty() && ids[ids.length - 1] !== id) { ids.push(id); }
      });
      ids.forEach(function (id, i) {
        cy.getElementById(id).addClass("traced");
        if (i > 0) {
          cy.add({ group: "edges", classes: "trace" +
                   (current.verdict.action === "dropped" ? " dropped" : ""),
                   data: { id: "trace:" + i, source: ids[i - 1], target: id } });
        }
      });
      $("trace-verdict").dataset.path = String(ids.length);
    });
  }
  T.onDraw(apply);

  function show(out) {
    current = out;
    var v = out.verdict, el = $("trace-verdict");
    el.textContent = v.action.toUpperCase() + ": " + v.reason;
    el.dataset.code = v.code;
    el.dataset.action = v.action;
    var lines = [];
    (out.hops || []).forEach(function (h) {
      lines.push(h.host + " in " + h.in_port_name);
      h.steps.forEach(function (s) {
        lines.push("  " + s.table + " " + s.table_name + "  " +
                   ((s.owner && s.owner.text) || ""));
      });
    });
    $("trace-steps").textContent = lines.join("\n");
    $("trace-steps").hidden = !lines.length;
    apply();
  }

  function run(q) {
    var body = { from: q.from, to: q.to, proto: q.proto || "icmp" };
    if (q.dport) { body.dport = Number(q.dport); }
    var headers = { "Content-Type": "application/json", "Accept": "application/json" };
    if (T.token) { headers.Authorization = "Bearer " + T.token; }
    return fetch(T.base + "/v1/tenants/" + encodeURIComponent(q.tenant) + "/trace",
                 { method: "POST", headers: headers, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (d) { return [r.ok, d]; }); })
      .then(function (res) {
        if (res[0]) { show(res[1]); return; }
        current = null;
        apply();
        var el = $("trace-verdict");
        el.textContent = "refused: " + ((res[1].error || {}).message || "?");
        el.dataset.code = "refused";
        el.dataset.action = "";
      }, function (err) { $("trace-verdict").textContent = "failed: " + err; });
  }

  $("trace-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    run({ tenant: $("trace-tenant").value, from: $("trace-from").value,
          to: $("trace-to").value, proto: $("trace-proto").value,
          dport: $("trace-dport").value });
  });

  var params = new URLSearchParams(location.search);
  if (params.get("trace")) {
    var q = { tenant: params.get("trace"), from: params.get("from"), to: params.get("to"),
              proto: params.get("proto"), dport: params.get("dport") };
    $("trace-tenant").value = q.tenant;
    $("trace-from").value = q.from || "";
    $("trace-to").value = q.to || "";
    if (q.proto) { $("trace-proto").value = q.proto; }
    $("trace-dport").value = q.dport || "";
    var wait = function () {          // after the first picture, so the path has nodes
      if (T.drawn() > 0) { run(q); } else { setTimeout(wait, 200); }
    };
    wait();
  }
}());
