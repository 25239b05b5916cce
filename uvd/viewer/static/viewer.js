// uvd viewer: paging on source pages, filtering on the failures page. No library, no server:
// data comes inline (window.UVD) or as <script> files, which file:// pages may load.
(function () {
  "use strict";
  var U = window.UVD || {};
  window.UVD = U;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function pager(root, count, size, render) {
    var pages = Math.max(1, Math.ceil(count / size)), current = 0;
    var label = root.querySelector("span");
    var prev = root.querySelector('[data-act="prev"]'), next = root.querySelector('[data-act="next"]');
    function show(p) {
      current = Math.min(Math.max(p, 0), pages - 1);
      label.textContent = "page " + (current + 1) + " of " + pages;
      prev.disabled = current === 0;
      next.disabled = current >= pages - 1;
      render(current * size, Math.min(count, (current + 1) * size));
    }
    prev.onclick = function () { show(current - 1); };
    next.onclick = function () { show(current + 1); };
    root.hidden = count <= size;
    show(0);
    return show;
  }

  // --- a source page: sentences as strips, PAGE_SIZE at a time ----------------------------------
  function initSource() {
    var list = document.querySelector('[data-testid="sentences"]');
    var rows = U.sentences || [];
    if (!rows.length) {
      document.querySelector('[data-testid="no-sentences"]').hidden = false;
      document.querySelector('[data-testid="pager"]').hidden = true;
      return;
    }
    pager(document.querySelector('[data-testid="pager"]'), rows.length, U.page_size, function (a, b) {
      list.textContent = "";
      list.start = a + 1;
      rows.slice(a, b).forEach(function (s) {
        var li = el("li", { "class": "sentence", "data-id": s.sentence_id });
        var meta = el("div", { "class": "meta" });
        meta.appendChild(el("code", {}, s.sentence_id.slice(0, 16)));
        meta.appendChild(el("span", { "class": "tag" }, s.kind));
        meta.appendChild(el("span", { "class": "tag split-" + s.split }, s.split));
        var shown = s.shown < s.num_images ? s.shown + " of " + s.num_images : String(s.num_images);
        meta.appendChild(el("span", {}, shown + (s.num_images === 1 ? " image" : " images")));
        li.appendChild(meta);
        if (s.strip) {
          li.appendChild(el("img", { src: "strips/" + s.strip, alt: s.kind + " sentence " + s.sentence_id,
                                     loading: "lazy", "class": "strip" }));
        } else {
          li.appendChild(el("div", { "class": "noimg" }, "not decoded"));
        }
        list.appendChild(li);
      });
    });
  }

  // --- the failures page: facets over groups, rows loaded per group on demand --------------------
  function initFailures() {
    var groups = U.groups || [];
    var tbody = document.querySelector('[data-testid="failures"] tbody');
    if (!tbody) return;
    var selects = Array.prototype.slice.call(document.querySelectorAll(".filters select"));
    var countEl = document.querySelector('[data-testid="failure-count"]');
    var loaded = {}, waiting = {};
    U.addRows = function (i, rows) {
      loaded[i] = rows;
      (waiting[i] || []).forEach(function (f) { f(); });
      delete waiting[i];
    };
    function load(i, done) {
      if (loaded[i] || !groups[i].shown) { done(); return; }
      if (waiting[i]) { waiting[i].push(done); return; }
      waiting[i] = [done];
      var s = el("script", { src: "failures/g" + i + ".js" });
      s.onerror = function () { loaded[i] = []; U.addRows(i, []); };
      document.body.appendChild(s);
    }
    function filters() {
      var f = {};
      selects.forEach(function (s) { if (s.value) f[s.dataset.field] = s.value; });
      return f;
    }
    function matching(f, skip) {
      var out = [];
      groups.forEach(function (g, i) {
        var ok = Object.keys(f).every(function (k) { return k === skip || g[k] === f[k]; });
        if (ok) out.push(i);
      });
      return out;
    }
    function updateOptions(f) {  // each select counts what the other filters leave
      selects.forEach(function (s) {
        var field = s.dataset.field, counts = {};
        matching(f, field).forEach(function (i) {
          counts[groups[i][field]] = (counts[groups[i][field]] || 0) + groups[i].count;
        });
        Array.prototype.forEach.call(s.options, function (o) {
          if (!o.value) return;
          var n = counts[o.value] || 0;
          o.textContent = o.value + " (" + n.toLocaleString() + ")";
          o.disabled = n === 0 && s.value !== o.value;
        });
      });
    }
    function cell(tr, text, cls) { var td = el("td", cls ? { "class": cls } : {}, text); tr.appendChild(td); return td; }
    function refresh() {
      var f = filters(), idx = matching(f);
      var hash = Object.keys(f).map(function (k) { return k + "=" + encodeURIComponent(f[k]); }).join("&");
      if (("#" + hash) !== location.hash && !(hash === "" && location.hash === "")) {
        history.replaceState(null, "", hash ? "#" + hash : location.pathname);
      }
      updateOptions(f);
      var pending = idx.length;
      if (!pending) render(idx);
      idx.forEach(function (i) { load(i, function () { if (--pending === 0) render(idx); }); });
    }
    function render(idx) {
      var rows = [], total = 0;
      idx.forEach(function (i) {
        var g = groups[i];
        total += g.count;
        (loaded[i] || []).forEach(function (r) { rows.push([g, r]); });
      });
      countEl.textContent = total.toLocaleString() + " rows" +
        (rows.length < total ? " (" + rows.length.toLocaleString() + " listed)" : "");
      pager(document.querySelector('[data-testid="failure-pager"]'), rows.length, U.page_size, function (a, b) {
        tbody.textContent = "";
        rows.slice(a, b).forEach(function (pair) {
          var g = pair[0], r = pair[1], tr = el("tr", { "data-reason": g.reason });
          cell(tr, "").appendChild(el("span", { "class": "badge " + g.status }, g.status));
          cell(tr, g.stage);
          cell(tr, g.source);
          cell(tr, g.reason, "reason");
          cell(tr, r.record_id, "rid");
          cell(tr, r.detail, "detail");
          var td = cell(tr, "", "input");
          if (r.input) {
            var a = el("a", { href: r.input_full || ("inputs/" + r.input), target: "_blank" });
            a.appendChild(el("img", { src: r.input_url || ("inputs/" + r.input), alt: "input", loading: "lazy" }));
            td.appendChild(a);
          } else {
            td.appendChild(el("span", { "class": "dim" }, "—"));
          }
          tbody.appendChild(tr);
        });
      });
    }
    selects.forEach(function (s) { s.onchange = refresh; });
    document.querySelector('[data-act="clear"]').onclick = function () {
      selects.forEach(function (s) { s.value = ""; });
      refresh();
    };
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="), s = selects.filter(function (x) { return x.dataset.field === p[0]; })[0];
      if (s && p[1] !== undefined) s.value = decodeURIComponent(p[1]);
    });
    refresh();
  }

  var kind = document.body.dataset.page;
  if (kind === "source") initSource();
  if (kind === "failures") initFailures();
})();
