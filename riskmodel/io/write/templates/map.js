
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
  function planPopup(p) {
    return '<div class="rm-pop"><b>Check ' + esc(p.check_no) + "</b> \u00b7 " + esc(p.unit) +
      "<table><tr><td>Segment</td><td>" + esc(p.segment_id) + "</td></tr><tr><td>Slot</td><td>" +
      esc(p.slot_start) + "<br>" + esc(p.slot_end) + "</td></tr>" +
      (p.coverage === undefined ? "" : "<tr><td>Coverage</td><td>" + fmt(p.coverage) + "</td></tr>") + "</table></div>";
  }

  var S = D.shifts.map(function (sh, i) {
    var F = D.shiftData[i].fields, rows = D.shiftData[i].rows, ci = F.indexOf("risk_class");
    var idx = [];
    rows.forEach(function (r, j) { if (r) { idx.push(j); } });
    // Low classes first so high-risk segments are drawn on top.
    idx.sort(function (a, b) { return (rows[a][ci] - rows[b][ci]) || (a - b); });
    var rowOf = new Map(idx.map(function (j) { return [segFeats[j], rows[j]]; }));
    var risk = L.geoJSON({type: "FeatureCollection", features: idx.map(function (j) { return segFeats[j]; })}, {
      renderer: rRisk,
      style: function (f) {
        var c = CLS[rowOf.get(f)[ci]] || {colour: "#888888", width: 2};
        return {color: c.colour, weight: c.width, opacity: 1, lineCap: "round", lineJoin: "round"};
      },
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
      var marks = pfc.features.filter(function (f) { return f.properties.mid; }).map(function (f) {
        var p = f.properties;
        return L.circleMarker([p.mid[1], p.mid[0]], {renderer: rPlanMk, radius: 8, color: unitColour(p.unit), weight: 3,
          fillColor: "#ffffff", fillOpacity: 1})
          .bindPopup(planPopup(p))
          .bindTooltip(esc(p.check_no), {permanent: true, direction: "center", className: "rm-chk"});
      });
      plan = L.layerGroup([casing].concat(marks));
    }
    return {risk: risk, plan: plan};
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
      h += "<h4 style=\"margin-top:6px\">Layers</h4>";
      if (S.some(function (s) { return s.plan; })) { h += '<label><input type="checkbox" id="rm-plan" checked> plan checks</label>'; }
      h += '<label><input type="checkbox" id="rm-border" checked> border</label>';
      h += '<label><input type="checkbox" id="rm-places" checked> settlements</label>';
      div.innerHTML = h;
      div.addEventListener("change", function (e) {
        var t = e.target;
        if (t.name === "rm-shift") { show(Number(t.value)); }
        else if (t.id === "rm-plan") { planOn = t.checked; if (S[cur].plan) { if (planOn) { S[cur].plan.addTo(map); } else { map.removeLayer(S[cur].plan); } } }
        else if (t.id === "rm-border") { if (t.checked) { border.addTo(map); } else { map.removeLayer(border); } }
        else if (t.id === "rm-places") { if (t.checked) { places.addTo(map); } else { map.removeLayer(places); } }
      });
      return div;
    }
  });
  new Ctl().addTo(map);

  var Legend = L.Control.extend({
    options: {position: "bottomright"},
    onAdd: function () {
      var div = L.DomUtil.create("div", "rm-box");
      var h = "<h4>Risk class</h4>";
      Object.keys(CLS).sort().reverse().forEach(function (k) {
        var c = CLS[k];
        h += '<div><span class="rm-sw" style="height:' + Math.max(2, Math.round(c.width)) + "px;background:" + c.colour + '"></span>' +
          esc(k) + " " + esc(c.label) + "</div>";
      });
      if (S.some(function (s) { return s.plan; })) {
        h += '<div><span class="rm-pt" style="border:3px solid #1f4e9c;background:#fff"></span>plan check (no.)</div>';
      }
      h += '<div><span class="rm-sw" style="height:0;border-top:2px dashed #444"></span>border</div>';
      h += '<div><span class="rm-pt" style="border:1px solid #3d3d3d;background:#fff;margin-left:9px"></span>settlement</div>';
      div.innerHTML = h;
      return div;
    }
  });
  new Legend().addTo(map);

  var b = allSegs.getBounds();
  if (!b.isValid()) { b = border.getBounds(); }
  if (b.isValid()) { map.fitBounds(b, {paddingTopLeft: [20, 20], paddingBottomRight: [220, 20]}); } else { map.setView([46.1, 14.9], 8); }
  zoomClass();
  // "#shift=night" in the address selects a shift (links, tests).
  var want = decodeURIComponent((location.hash.match(/shift=([^&]+)/) || [])[1] || "");
  var first = Math.max(0, D.shifts.map(function (sh) { return sh.name; }).indexOf(want));
  if (S.length) {
    show(first);
  }
  window.riskmodelMap = {map: map, shifts: S, show: show};  // for debugging and tests
  body.dataset.segments = String(D.segments.features.length);
  body.dataset.ready = "1";
}());
