
(function () {
  "use strict";
  var body = document.body;
  window.addEventListener("error", function (e) { body.dataset.error = String(e.message || e); });
  var D = JSON.parse(document.getElementById("rm-data").textContent);
  var CLS = D.classes;
  function esc(s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) { return "\u2013"; }
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
  }
  var map = L.map("map", {zoomSnap: 0.25, zoomDelta: 0.5, preferCanvas: true, minZoom: 5, maxZoom: 18});
  map.attributionControl.setPrefix("Leaflet");
  D.attribution.forEach(function (a) { map.attributionControl.addAttribution(esc(a)); });
  L.control.scale({imperial: false}).addTo(map);
  function pane(name, z) { map.createPane(name).style.zIndex = z; return L.canvas({pane: name, tolerance: 6}); }
  var rPlan = pane("rmPlan", 390), rBorder = pane("rmBorder", 395), rCasing = pane("rmCasing", 398),
      rRisk = pane("rmRisk", 400), rPlaces = pane("rmPlaces", 392), rPlanMk = pane("rmPlanMk", 420);
  function unitColour(u) { return D.units[u] || "#1f4e9c"; }
  var CHK_R = 8;  // check marker radius (px); with its 3 px ring the marker is 2 * 9.5 px wide
  // Colour mode: "class" = risk classes within the shift (ranks); "abs" = expected events on one
  // scale for the whole day (D.absBreaks, pooled over the shifts), so a busy night and a quiet
  // morning look different.
  var AB = D.absBreaks || [], mode = "class";
  function absClass(v) {
    if (v === null || v === undefined) { return 0; }
    var k = 0;
    AB.forEach(function (b) { if (v >= b) { k += 1; } });
    return 5 - AB.length + k;  // the highest band is always "very high"
  }

  // Decode the shared string table (labels, reasons) in place.
  var STRF = {risk_label: 1, reason_1: 1, reason_2: 1, reason_3: 1};
  D.shiftData.forEach(function (sd) {
    sd.fields.forEach(function (k, j) {
      if (!STRF[k]) { return; }
      sd.rows.forEach(function (r) { if (r && r[j] !== null) { r[j] = D.strings[r[j]]; } });
    });
  });
  var segFeats = D.segments.features;
  var allSegs = L.geoJSON(D.segments, {renderer: rCasing, interactive: false,
    style: {color: "#3a3a3a", weight: 4.5, opacity: 0.55, lineCap: "round"}});

  function riskPopup(sp, r, F, sh) {
    var g = function (k) { var i = F.indexOf(k); return i < 0 ? null : r[i]; };
    var cls = g("risk_class"), lab = g("risk_label") || (CLS[cls] ? CLS[cls].label : "");
    var h = '<div class="rm-pop"><b>' + esc(sp.segment_id) + "</b>" + (sp.area ? " \u00b7 " + esc(sp.area) : "") +
      "<table><tr><td>Risk class</td><td><b>" + esc(cls) + " \u2013 " + esc(lab) + "</b></td></tr>" +
      "<tr><td>Rank</td><td>" + esc(g("rank")) + " of " + sh.n + (g("percentile") === null ? "" : " (percentile " + fmt(g("percentile")) + ")") + "</td></tr>" +
      (g("threat") === null ? "" : "<tr><td>Threat (effort-neutral, ranks and plans)</td><td>" + fmt(g("threat")) + "</td></tr>") +
      "<tr><td>Expected recorded" + (g("exposure") === null ? "" : " (with " + fmt(g("exposure")) + " officer-h)") + "</td><td>" + fmt(g("expected")) + " (band " + fmt(g("lower")) + "\u2013" + fmt(g("upper")) + ")</td></tr>";
    if (g("threat") !== null) {
      h += "<tr><td>T / V / I</td><td>" + fmt(g("threat")) + " / " + fmt(g("vulnerability")) + " / " + fmt(g("impact")) + "</td></tr>";
    }
    if (g("adapt_factor") !== null && g("adapt_factor") !== 1) {
      h += "<tr><td>Recent-residual factor</td><td>" + fmt(g("adapt_factor")) + "</td></tr>";
    }
    if (sp.chainage_from_km !== undefined) {
      h += "<tr><td>Chainage</td><td>" + fmt(sp.chainage_from_km) + "\u2013" + fmt(sp.chainage_to_km) + " km" + (sp.river ? " \u00b7 river" : "") + "</td></tr>";
    }
    h += "<tr><td>Shift</td><td>" + esc(sh.name) + " " + esc(sh.date) + " " + esc(sh.start) + "\u2013" + esc(sh.end) + "</td></tr></table>";
    var rs = [g("reason_1"), g("reason_2"), g("reason_3")].filter(function (x) { return x; });
    if (rs.length) { h += "Reasons<ol>" + rs.map(function (x) { return "<li>" + esc(x) + "</li>"; }).join("") + "</ol>"; }
    return h + "</div>";
  }
  function hm(iso) { return String(iso || "").substr(11, 5); }  // HH:MM of local ISO 8601 text
  function planPopup(p) {
    return '<div class="rm-pop"><b>Check ' + esc(p.check_no) + "</b> \u00b7 " + esc(p.unit) +
      "<table><tr><td>Segment</td><td>" + esc(p.segment_id) + "</td></tr><tr><td>Slot</td><td>" +
      esc(hm(p.slot_start)) + "\u2013" + esc(hm(p.slot_end)) + " (local time, " + esc(String(p.slot_start || "").substr(0, 10)) + ")</td></tr>" +
      (p.coverage === undefined || p.coverage === null ? "" : "<tr><td>Chance of a check this shift</td><td>" +
        (p.coverage >= 0.01 ? Math.round(100 * p.coverage) + "\u00a0%" : "under 1\u00a0%") + "</td></tr>") + "</table></div>";
  }

  var S = D.shifts.map(function (sh, i) {
    var F = D.shiftData[i].fields, rows = D.shiftData[i].rows, ci = F.indexOf("risk_class"),
        ei = F.indexOf("expected");
    var idx = [];
    rows.forEach(function (r, j) { if (r) { idx.push(j); } });
    // Low classes first so high-risk segments are drawn on top.
    idx.sort(function (a, b) { return (rows[a][ci] - rows[b][ci]) || (a - b); });
    var rowOf = new Map(idx.map(function (j) { return [segFeats[j], rows[j]]; }));
    function style(f) {
      var r = rowOf.get(f), k = mode === "abs" && ei >= 0 ? absClass(r[ei]) : r[ci];
      var c = CLS[k] || {colour: "#888888", width: 2};
      return {color: c.colour, weight: c.width, opacity: 1, lineCap: "round", lineJoin: "round"};
    }
    var risk = L.geoJSON({type: "FeatureCollection", features: idx.map(function (j) { return segFeats[j]; })}, {
      renderer: rRisk,
      style: style,
      onEachFeature: function (f, layer) {
        layer.bindPopup(function () { return riskPopup(f.properties, rowOf.get(f), F, sh); }, {maxWidth: 360});
      }
    });
    var plan = null, pfc = D.plans[sh.name];
    if (pfc && pfc.features.length) {
      var casing = L.geoJSON(pfc, {
        renderer: rPlan,
        style: function (f) { return {color: unitColour(f.properties.unit), weight: 15, opacity: 0.45, lineCap: "round"}; },
        onEachFeature: function (f, layer) { layer.bindPopup(planPopup(f.properties)); }
      });
      var checks = pfc.features.filter(function (f) { return f.properties.mid; }).map(function (f) {
        var p = f.properties, ll = L.latLng(p.mid[1], p.mid[0]);
        var m = L.circleMarker(ll, {renderer: rPlanMk, radius: CHK_R, color: unitColour(p.unit), weight: 3,
          fillColor: "#ffffff", fillOpacity: 1})
          .bindPopup(planPopup(p))
          .bindTooltip(esc(p.check_no), {permanent: true, direction: "center", className: "rm-chk"});
        // Leader from the checked segment to the marker when the marker is moved aside.
        var leader = L.polyline([ll, ll], {renderer: rPlanMk, color: unitColour(p.unit), weight: 1.5,
          opacity: 0.9, interactive: false});
        return {no: Number(p.check_no), ll: ll, m: m, leader: leader};
      });
      checks.sort(function (a, b) { return a.no - b.no; });
      plan = L.layerGroup([casing].concat(checks.map(function (c) { return c.leader; }),
                                          checks.map(function (c) { return c.m; })));
      plan.checks = checks;
    }
    return {risk: risk, plan: plan, style: style};
  });

  var border = L.geoJSON(D.border, {renderer: rBorder, interactive: false,
    style: {color: "#444444", weight: 1.5, opacity: 0.9, dashArray: "6 4"}});
  var places = L.layerGroup(D.places.features.map(function (f) {
    var p = f.properties, c = f.geometry.coordinates;
    var m = L.circleMarker([c[1], c[0]], {renderer: rPlaces, radius: Math.max(2, Math.min(6, 0.9 * Math.log(1 + p.population) / Math.LN10)),
      color: "#555555", weight: 1, fillColor: "#f4f4f4", fillOpacity: 0.9});
    var t = esc(p.name) + (p.country ? " (" + esc(p.country) + ")" : "");
    if (p.lab < 2) {
      m.bindTooltip(esc(p.name), {permanent: true, direction: "right", offset: [4, 0], className: "rm-lbl" + (p.lab ? " rm-minor" : "")});
      m.bindPopup(t + (p.population ? "<br>population " + p.population : ""));
    } else {
      m.bindTooltip(t + (p.population ? ", " + p.population : ""));
    }
    return m;
  }));
  border.addTo(map);
  allSegs.addTo(map);
  places.addTo(map);

  function zoomClass() { map.getContainer().classList.toggle("rm-zlo", map.getZoom() < 10); }
  map.on("zoomend", zoomClass);

  // Labels never overlap: check markers that would cover each other are moved aside (with a
  // leader line to their segment); place names are kept largest first and dropped where they
  // would touch a check, a control or a larger place's name (counted in the legend note).
  var GAP = 3;  // px kept free around every label, so neighbours never read as one word
  function rectOf(el) {
    var r = el.getBoundingClientRect();
    return {l: r.left - GAP, t: r.top - GAP, r: r.right + GAP, b: r.bottom + GAP};
  }
  function hits(a, list) {
    for (var i = 0; i < list.length; i += 1) {
      var b = list[i];
      if (a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b) { return true; }
    }
    return false;
  }
  var RING = [[0, 0]];
  [24, 40, 56, 72].forEach(function (d) {
    for (var k = 0; k < 12; k += 1) {
      var a = -Math.PI / 2 + k * Math.PI / 6;
      RING.push([Math.round(d * Math.cos(a)), Math.round(d * Math.sin(a))]);
    }
  });
  var hiddenNames = 0;
  function declutter() {
    if (cur < 0) { return; }
    var cr = map.getContainer().getBoundingClientRect(), taken = [], half = CHK_R + 3;
    document.querySelectorAll(".rm-box").forEach(function (el) { taken.push(rectOf(el)); });
    var pl = S[cur].plan;
    if (pl && planOn) {
      pl.checks.forEach(function (c) {
        var p = map.latLngToContainerPoint(c.ll), box = null, at = null;
        for (var i = 0; i < RING.length && !box; i += 1) {
          var x = cr.left + p.x + RING[i][0], y = cr.top + p.y + RING[i][1];
          var cand = {l: x - half, t: y - half, r: x + half, b: y + half};
          if (!hits(cand, taken)) { box = cand; at = RING[i]; }
        }
        if (!box) {  // no free spot nearby: keep it on its segment
          at = [0, 0];
          box = {l: cr.left + p.x - half, t: cr.top + p.y - half, r: cr.left + p.x + half, b: cr.top + p.y + half};
        }
        var ll = map.containerPointToLatLng(L.point(p.x + at[0], p.y + at[1]));
        c.m.setLatLng(at[0] || at[1] ? ll : c.ll);
        c.leader.setLatLngs([c.ll, at[0] || at[1] ? ll : c.ll]);
        taken.push(box);
      });
    }
    hiddenNames = 0;
    if (map.hasLayer(places)) {
      places.eachLayer(function (m) {
        var tt = m.getTooltip(), el = tt && tt.options.permanent ? tt.getElement() : null;
        if (!el) { return; }
        el.classList.remove("rm-hide");
        el.style.marginLeft = "";
        var b = rectOf(el);
        if (b.r - b.l <= 2 * GAP) { return; }  // hidden at this zoom (minor places)
        if (hits(b, taken)) {  // try the left side of the dot
          el.style.marginLeft = (-(b.r - b.l - 2 * GAP) - 16) + "px";
          b = rectOf(el);
          if (hits(b, taken)) {
            el.style.marginLeft = "";
            el.classList.add("rm-hide");
            hiddenNames += 1;
            return;
          }
        }
        taken.push(b);
      });
    }
    var note = document.getElementById("rm-note");
    if (note) {
      note.textContent = hiddenNames ? hiddenNames + " place name" + (hiddenNames > 1 ? "s" : "") +
        " left out where labels would overlap; zoom in" : "";
    }
    body.dataset.hiddenNames = String(hiddenNames);
  }
  map.on("zoomend moveend resize", declutter);

  var cur = -1, planOn = true;
  function show(i) {
    if (cur >= 0) { map.removeLayer(S[cur].risk); if (S[cur].plan) { map.removeLayer(S[cur].plan); } }
    cur = i;
    S[i].risk.addTo(map);
    if (S[i].plan && planOn) { S[i].plan.addTo(map); }
    var sh = D.shifts[i];
    document.getElementById("rm-info").textContent = sh.name + " \u00b7 " + sh.date + " " + sh.start + "\u2013" + sh.end +
      " \u00b7 " + sh.n + " segments";
    body.dataset.shift = sh.name;
    var radio = document.querySelector('input[name="rm-shift"][value="' + i + '"]');
    if (radio) { radio.checked = true; }
    declutter();
  }

  var Ctl = L.Control.extend({
    options: {position: "topright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "rm-box");
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      var h = "<h4>Shift</h4>";
      D.shifts.forEach(function (sh, i) {
        h += '<label><input type="radio" name="rm-shift" value="' + i + '"' + (i === 0 ? " checked" : "") + "> " +
          esc(sh.name) + ' <span class="rm-sub">' + esc(sh.date) + " " + esc(sh.start) + "\u2013" + esc(sh.end) + "</span></label>";
      });
      if (AB.length) {
        h += '<h4 style="margin-top:6px">Colour by</h4>' +
          '<label><input type="radio" name="rm-mode" value="class" checked> risk class within the shift</label>' +
          '<label><input type="radio" name="rm-mode" value="abs"> expected events, one scale for the day</label>';
      }
      h += "<h4 style=\"margin-top:6px\">Layers</h4>";
      if (S.some(function (s) { return s.plan; })) { h += '<label><input type="checkbox" id="rm-plan" checked> plan checks</label>'; }
      h += '<label><input type="checkbox" id="rm-border" checked> border</label>';
      h += '<label><input type="checkbox" id="rm-places" checked> settlements</label>';
      div.innerHTML = h;
      div.addEventListener("change", function (e) {
        var t = e.target;
        if (t.name === "rm-shift") { show(Number(t.value)); }
        else if (t.name === "rm-mode") { setMode(t.value); }
        else if (t.id === "rm-plan") { planOn = t.checked; if (S[cur].plan) { if (planOn) { S[cur].plan.addTo(map); } else { map.removeLayer(S[cur].plan); } } }
        else if (t.id === "rm-border") { if (t.checked) { border.addTo(map); } else { map.removeLayer(border); } }
        else if (t.id === "rm-places") { if (t.checked) { places.addTo(map); } else { map.removeLayer(places); } }
        declutter();
      });
      return div;
    }
  });
  var ctl = new Ctl().addTo(map);

  var Legend = L.Control.extend({
    options: {position: "bottomright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "rm-box");
      div.id = "rm-legend";
      legendDiv = div;
      fillLegend();
      return div;
    }
  });
  var legendDiv = null;
  function sw(c, text) {
    return '<div><span class="rm-sw" style="height:' + Math.max(2, Math.round(c.width)) + "px;background:" + c.colour + '"></span>' +
      text + "</div>";
  }
  function fillLegend() {
    var h = "";
    if (mode === "abs") {
      h = "<h4>Expected events</h4><div class=\"rm-sub\">per segment and shift, one scale for the day</div>";
      for (var j = AB.length; j >= 0; j -= 1) {
        var lo = j > 0 ? AB[j - 1] : null, hi = j < AB.length ? AB[j] : null;
        var text = lo === null ? "under " + fmt(hi) : hi === null ? fmt(lo) + " or more" : fmt(lo) + "\u2013" + fmt(hi);
        h += sw(CLS[5 - AB.length + j], esc(text));
      }
    } else {
      h = "<h4>Risk class</h4><div class=\"rm-sub\">rank within the shift</div>";
      Object.keys(CLS).sort().reverse().forEach(function (k) { h += sw(CLS[k], esc(k) + " " + esc(CLS[k].label)); });
    }
    if (S.some(function (s) { return s.plan; })) {
      h += '<div><span class="rm-pt" style="border:3px solid #1f4e9c;background:#fff"></span>plan check (no.)</div>';
    }
    h += '<div><span class="rm-sw" style="height:0;border-top:2px dashed #444"></span>border</div>';
    h += '<div><span class="rm-pt" style="border:1px solid #3d3d3d;background:#fff;margin-left:9px"></span>settlement</div>';
    h += '<div id="rm-note" class="rm-sub"></div>';
    legendDiv.innerHTML = h;
  }
  new Legend().addTo(map);
  function setMode(m) {
    mode = m === "abs" && AB.length ? "abs" : "class";
    S.forEach(function (s) { s.risk.setStyle(s.style); });
    fillLegend();
    declutter();
    body.dataset.mode = mode;
    var radio = document.querySelector('input[name="rm-mode"][value="' + mode + '"]');
    if (radio) { radio.checked = true; }
  }

  var b = allSegs.getBounds();
  if (!b.isValid()) { b = border.getBounds(); }
  // Keep the border clear of the boxes on the right (shift choice on top, legend below).
  var boxW = Math.max(ctl.getContainer().offsetWidth, legendDiv ? legendDiv.offsetWidth : 0);
  var padR = Math.min(boxW + 24, Math.round(map.getSize().x / 2));
  if (b.isValid()) { map.fitBounds(b, {paddingTopLeft: [20, 20], paddingBottomRight: [padR, 20]}); } else { map.setView([46.1, 14.9], 8); }
  zoomClass();
  // "#shift=night" in the address selects a shift (links, tests).
  var want = decodeURIComponent((location.hash.match(/shift=([^&]+)/) || [])[1] || "");
  var first = Math.max(0, D.shifts.map(function (sh) { return sh.name; }).indexOf(want));
  if (S.length) {
    show(first);
  }
  setMode((location.hash.match(/mode=(abs|class)/) || [])[1] || "class");  // "#mode=abs" too
  window.riskmodelMap = {map: map, shifts: S, show: show, setMode: setMode};  // for debugging and tests
  body.dataset.segments = String(D.segments.features.length);
  body.dataset.ready = "1";
}());
