// eventyard console: progressive enhancement only. Every page works without
// this file; with it, charts draw, counts and jobs refresh, the timeline
// grows in place and the live tail follows new activities.
"use strict";

(function () {
  var PALETTE = ["#0b4f9c", "#c2410c", "#1d6b2a", "#7e22ce", "#a4000f", "#4a4a4a"];

  function fetchHtml(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } }).then(
      function (r) {
        if (!r.ok) throw new Error(url + ": " + r.status);
        return r.text();
      }
    ).then(function (text) {
      return new DOMParser().parseFromString(text, "text/html");
    });
  }

  // Overview: the stored counts (slow scans) load after the page.
  function loadTotals() {
    var slot = document.getElementById("totals-slot");
    if (!slot) return;
    fetchHtml(slot.dataset.src).then(function (doc) {
      var totals = doc.getElementById("totals");
      if (totals) slot.replaceChildren(document.importNode(totals, true));
    }).catch(function () { /* the link in the slot still works */ });
  }

  // Overview: one uPlot chart per figure, from the JSON the page carries.
  function drawCharts() {
    var source = document.getElementById("chart-data");
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    document.querySelectorAll("figure.chart").forEach(function (figure) {
      var series = data[figure.dataset.series] || [];
      var holder = figure.querySelector(".canvas");
      var total = 0;
      series.forEach(function (s) { s.values.forEach(function (v) { total += v; }); });
      var opts = {
        width: Math.max(320, holder.clientWidth || 900),
        height: 240,
        scales: { x: { time: true } },
        axes: [{}, { label: "events" }],
        series: [{ label: "hour (UTC)" }].concat(series.map(function (s, i) {
          return { label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: true, size: 5 } };
        })),
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); }
      };
      var rows = [data.hours].concat(series.map(function (s) { return s.values; }));
      if (!series.length) {
        opts.series = [{ label: "hour (UTC)" }, { label: "events", stroke: PALETTE[0] }];
        rows = [data.hours, data.hours.map(function () { return 0; })];
      }
      new uPlot(opts, rows, holder);
      figure.querySelector(".chart-total").textContent = String(total);
      figure.dataset.rendered = "true";
    });
  }

  // Contact page: "Older activities" appends the next page instead of leaving.
  function enhanceTimeline() {
    document.addEventListener("click", function (event) {
      var link = event.target.closest("#timeline-more");
      if (!link) return;
      event.preventDefault();
      link.setAttribute("aria-busy", "true");
      fetchHtml(link.dataset.fragment).then(function (doc) {
        var list = document.querySelector("#timeline-section ol.timeline");
        var items = doc.querySelectorAll("ol.timeline > li");
        items.forEach(function (li) { list.appendChild(document.importNode(li, true)); });
        var next = doc.querySelector("p.more");
        link.parentNode.replaceWith(document.importNode(next, true));
        var first = items.length ? document.getElementById(items[0].id) : null;
        if (first) first.querySelector("summary").focus();
      }).catch(function () { window.location.href = link.href; });
    });
  }

  // Jobs page: refresh the rows every second while the page is visible.
  function refreshJobs() {
    var body = document.getElementById("job-rows");
    if (!body) return;
    function tick() {
      if (document.visibilityState === "visible") {
        fetch(body.dataset.src, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) throw new Error(String(r.status));
          return r.text();
        }).then(function (html) {
          var doc = new DOMParser().parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html");
          body.replaceChildren.apply(body, Array.prototype.map.call(
            doc.querySelectorAll("tbody > tr"), function (tr) { return document.importNode(tr, true); }
          ));
        }).catch(function () { /* try again on the next tick */ });
      }
      window.setTimeout(tick, 1000);
    }
    window.setTimeout(tick, 1000);
  }

  // Live tail: server-sent events, newest first, at most 500 shown.
  function followTail() {
    var status = document.getElementById("tail-status");
    var list = document.getElementById("tail");
    if (!status || !list) return;
    var shown = new Set();
    var source = new EventSource(status.dataset.stream);
    source.addEventListener("open", function () {
      status.textContent = "Following: new activities appear at the top.";
      status.dataset.state = "open";
    });
    source.addEventListener("error", function () {
      status.textContent = "Reconnecting…";
      status.dataset.state = "reconnecting";
    });
    source.addEventListener("activity", function (event) {
      var a = JSON.parse(event.data);
      if (shown.has(a.id)) return;
      shown.add(a.id);
      var li = document.createElement("li");
      li.id = "tail-" + a.id;
      li.dataset.name = a.name;
      li.dataset.dialect = a.dialect;
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      var time = document.createElement("time");
      time.dateTime = a.received_at;
      time.textContent = a.received_at.replace("T", " ").replace(/\.\d+Z$|Z$/, "");
      var name = document.createElement("strong");
      name.className = "name";
      name.textContent = a.name;
      var dialect = document.createElement("span");
      dialect.className = "tag";
      dialect.textContent = a.dialect;
      var contact = document.createElement("a");
      contact.href = "/console/contacts/" + encodeURIComponent(a.contact_id);
      contact.textContent = "contact " + a.contact_id;
      summary.append(time, " ", name, " ", dialect);
      var who = document.createElement("p");
      who.appendChild(contact);
      var pre = document.createElement("pre");
      pre.className = "json";
      pre.textContent = JSON.stringify(a.properties, null, 2);
      details.append(summary, who, pre);
      li.appendChild(details);
      list.insertBefore(li, list.firstChild);
      while (list.children.length > 500) list.removeChild(list.lastChild);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    loadTotals();
    drawCharts();
    enhanceTimeline();
    refreshJobs();
    followTail();
  });
})();
