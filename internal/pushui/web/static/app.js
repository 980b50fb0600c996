// pushui: small progressive enhancements. Every page works without this
// file; it adds live updates, live filtering, confirmations and ticking
// relative times.
"use strict";

(function () {
  // Live filter on the main page: hide sections and rows as you type and
  // keep the filter in the URL. Narrowing what the server rendered happens
  // here; anything wider asks the server again.
  var form = document.getElementById("filter");
  if (form) {
    var initial = {
      server: form.elements.server.value.toLowerCase(),
      app: form.elements.app.value.toLowerCase(),
    };
    var sections, count, none;
    var scan = function () {
      sections = Array.prototype.slice.call(document.querySelectorAll("section.server"));
      count = document.getElementById("count");
      none = document.getElementById("none");
    };
    scan();
    // A live update brings the sections the server filtered by the URL,
    // which holds what is typed: that is the new starting point.
    document.addEventListener("pushui:live", function () {
      scan();
      initial.server = form.elements.server.value.trim().toLowerCase();
      initial.app = form.elements.app.value.trim().toLowerCase();
    });
    var timer = null;

    var apply = function () {
      var server = form.elements.server.value.trim().toLowerCase();
      var app = form.elements.app.value.trim().toLowerCase();
      if (server.indexOf(initial.server) < 0 || app.indexOf(initial.app) < 0) {
        form.submit(); // wider than what is on the page
        return;
      }
      var shown = 0;
      sections.forEach(function (sec) {
        var ok = sec.dataset.server.indexOf(server) >= 0;
        var rows = 0;
        sec.querySelectorAll("tbody tr[data-app]").forEach(function (tr) {
          var hit = !app || tr.dataset.app.indexOf(app) >= 0 || (tr.dataset.env || "").indexOf(app) >= 0;
          tr.hidden = !hit;
          var next = tr.nextElementSibling; // its failure panel
          if (next && next.classList.contains("failure-row")) next.hidden = !hit;
          if (hit) rows++;
        });
        if (app && rows === 0) ok = false;
        sec.hidden = !ok;
        if (ok) shown++;
      });
      if (count) count.textContent = String(shown);
      if (none) none.hidden = shown > 0;
      var q = new URLSearchParams(new FormData(form));
      ["server", "app", "group", "state"].forEach(function (k) {
        if (!q.get(k)) q.delete(k);
      });
      var qs = q.toString();
      history.replaceState(null, "", qs ? "?" + qs : location.pathname);
      var refreshNext = document.querySelector("form.refresh input[name=next]");
      if (refreshNext) refreshNext.value = location.pathname + location.search;
    };

    ["server", "app"].forEach(function (name) {
      form.elements[name].addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(apply, 120);
      });
    });
    ["group", "state"].forEach(function (name) {
      if (form.elements[name]) form.elements[name].addEventListener("change", function () { form.submit(); });
    });
  }

  // Buttons with data-confirm ask before their form is sent. {name} in
  // the question becomes what the form's control of that name shows (the
  // chosen option's text), so that the question names the version.
  document.addEventListener("submit", function (ev) {
    var btn = ev.submitter;
    if (!btn || !btn.dataset.confirm) return;
    var form = ev.target;
    var q = btn.dataset.confirm.replace(/\{([a-z_]+)\}/g, function (all, name) {
      var el = form.elements[name];
      if (!el) return all;
      if (el.tagName === "SELECT" && el.selectedIndex >= 0) return el.options[el.selectedIndex].text;
      return el.value;
    });
    if (!window.confirm(q)) ev.preventDefault();
  });

  // Script output is loaded when its error is opened, so the main page
  // stays small; without this script the link opens it as text.
  document.addEventListener("toggle", function (ev) {
    var det = ev.target;
    if (!(det instanceof HTMLDetailsElement) || !det.open) return;
    var link = det.querySelector("a.output");
    if (!link) return;
    fetch(link.href, { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status + " " + r.statusText);
        return r.text();
      })
      .then(function (text) {
        var pre = document.createElement("pre");
        pre.textContent = text || "(no output)";
        link.replaceWith(pre);
      })
      .catch(function (err) {
        link.textContent = "Script output (loading failed: " + err.message + ")";
      });
  }, true);

  // Keep relative times current while the page stays open.
  var rel = function (t) {
    var secs = Math.round((Date.now() - t.getTime()) / 1000);
    var abs = Math.abs(secs);
    var s;
    if (abs < 10) return "just now";
    if (abs < 60) s = abs + "s";
    else if (abs < 3600) s = Math.floor(abs / 60) + "m";
    else if (abs < 48 * 3600) s = Math.floor(abs / 3600) + "h";
    else if (abs < 31 * 86400) s = Math.floor(abs / 86400) + "d";
    else return t.toISOString().slice(0, 10);
    return secs < 0 ? "in " + s : s + " ago";
  };
  // One format everywhere: relative, kept current; the absolute time in
  // UTC is the element's title, set by the server.
  var tick = function () {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var t = new Date(el.getAttribute("datetime"));
      if (!isNaN(t)) el.textContent = rel(t);
    });
  };
  tick();
  setInterval(tick, 30000);

  // Live pages: regions marked data-live (each with an id) are replaced by
  // the same regions of the page loaded again, whenever /api/live says
  // what the page shows changed (and every 15 s, for what time changes:
  // a host falling silent). A region holding the focus, a form being
  // filled in or an opened output is left alone until the next change.
  var body = document.body;
  if (body.dataset.live !== undefined && document.querySelector("[data-live][id]")) {
    var gen = body.dataset.live;
    var src = "/api/live" + (body.dataset.liveRollout ? "?rollout=" + encodeURIComponent(body.dataset.liveRollout) : "");
    var edited = new WeakSet();
    document.addEventListener("input", function (ev) {
      if (ev.target.form) edited.add(ev.target.form);
    });
    var busy = function (el) {
      var a = document.activeElement;
      if (a && a !== body && el.contains(a) && a.matches("input, select, textarea")) return true;
      if (el.querySelector("details[open]")) return true;
      return Array.prototype.some.call(el.querySelectorAll("form"), function (f) { return edited.has(f); });
    };
    var loaded = Date.now();
    var reload = function () {
      return fetch(location.href, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live][id]").forEach(function (el) {
            var fresh = doc.getElementById(el.id);
            if (fresh && fresh.innerHTML !== el.innerHTML && !busy(el)) el.replaceWith(document.importNode(fresh, true));
          });
          gen = doc.body.dataset.live;
          loaded = Date.now();
          tick();
          document.dispatchEvent(new Event("pushui:live"));
        });
    };
    var poll = function () {
      fetch(src, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (j) {
          if (document.hidden) return;
          if (j && j.generation !== gen || Date.now() - loaded > 15000) return reload();
        })
        .catch(function () {})
        .then(function () { setTimeout(poll, 1000); });
    };
    setTimeout(poll, 1000);
  }
})();
