// The Stardag dashboard: one small router and a function per page, all reading the
// JSON API under /api/v1/. Every value from the API is put on the page as text
// (textContent or an attribute), never as markup, so a parameter holding HTML shows
// as that HTML's text.
"use strict";

(function () {
  const main = document.getElementById("main");
  const OUTCOMES = ["computed", "cached", "failed", "skipped"];
  let timers = [];
  let generation = 0;

  // -- helpers ------------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function link(href, ...children) { return el("a", { href, "data-nav": true }, ...children); }
  function short(id) { return id ? id.slice(0, 12) : ""; }
  function taskLink(id, label) { return link("/tasks/" + id, label || short(id)); }
  function buildLink(id) { return link("/builds/" + id, short(id)); }
  function badge(text, kind) { return el("span", { class: "badge " + (kind || text) }, text); }

  async function api(path) {
    const response = await fetch("/api/v1" + path, { credentials: "same-origin", headers: { accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || response.statusText);
      throw new Error(detail);
    }
    return body;
  }

  function when(iso) {
    if (!iso) return "\u2013";
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function seconds(s) {
    if (s === null || s === undefined) return "\u2013";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function bytes(n) {
    if (n === null || n === undefined) return "\u2013";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i ? n.toFixed(1) + " " + units[i] : n + " B";
  }

  function ratio(r) { return r === null || r === undefined ? "\u2013" : r.toFixed(2) + "\u00d7"; }

  function kv(rows) {
    return el("table", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  }

  function every(ms, work) {
    const mine = generation;
    const id = setInterval(() => {
      if (mine !== generation) { clearInterval(id); return; }
      if (!document.hidden) work();
    }, ms);
    timers.push(id);
  }

  function failed(error) { return el("p", { class: "error" }, "Error: " + error.message); }

  function counts(c) {
    return el("span", { class: "counts" }, OUTCOMES.filter((o) => c[o]).map((o) => el("span", {}, badge(String(c[o]), o), " " + o)));
  }

  function buildStatus(b) {
    if (b.status === "running" && b.alive === false) return badge("running?", "warn");
    return badge(b.status);
  }

  // -- pages --------------------------------------------------------------------------------
  async function buildsPage() {
    document.title = "Builds \u00b7 Stardag";
    const body = el("tbody");
    const more = el("button", { type: "button", hidden: true }, "Older builds");
    const table = el("table", { id: "builds", "data-refreshes": "0" },
      el("thead", {}, el("tr", {}, ["Status", "Build", "Started", "Duration", "Runs", "Tasks", "Who and where", "Command"].map((h) => el("th", {}, h)))),
      body);
    main.replaceChildren(el("h1", {}, "Builds"), table, el("p", {}, more));
    let next = null, shown = [];
    const row = (b) => el("tr", { "data-build": b.id, "data-status": b.status },
      el("td", {}, buildStatus(b)),
      el("td", { class: "mono" }, buildLink(b.id)),
      el("td", {}, when(b.started)),
      el("td", {}, b.status === "running" ? seconds((Date.now() - new Date(b.started)) / 1000) : seconds(b.duration)),
      el("td", {}, counts(b.counts)),
      el("td", {}, String(b.total)),
      el("td", {}, `${b.environment.username}@${b.environment.host}`),
      el("td", { class: "mono" }, b.argv.join(" ").slice(0, 120)));
    const render = () => {
      body.replaceChildren(...shown.map(row));
      if (!shown.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No builds recorded yet.")));
      more.hidden = !next;
    };
    const page = await api("/builds?limit=50");
    shown = page.builds; next = page.next; render();
    more.addEventListener("click", async () => {
      const older = await api("/builds?limit=50&before=" + encodeURIComponent(next));
      shown = shown.concat(older.builds); next = older.next; render();
    });
    every(2000, async () => {
      // The newest page again (new builds appear on top, running ones change), then each
      // older build shown that is still running: never every build shown, which after a
      // few "Older builds" would be hundreds of rows every two seconds.
      const fresh = await api("/builds?limit=50");
      const top = new Set(fresh.builds.map((b) => b.id));
      const older = shown.filter((b) => !top.has(b.id));
      const again = await Promise.all(older.map((b) => b.status === "running" ? api("/builds/" + b.id) : b));
      if (older.length) shown = fresh.builds.concat(again); else { shown = fresh.builds; next = fresh.next; }
      render();
      table.dataset.refreshes = String(Number(table.dataset.refreshes) + 1);
    });
  }

  async function buildPage(id) {
    const b = await api("/builds/" + encodeURIComponent(id));
    document.title = `Build ${short(b.id)} \u00b7 Stardag`;
    const env = b.environment;
    const timeline = el("div", { class: "timeline", id: "timeline" });
    const failures = el("div", { id: "failures" });
    const header = el("div", {});
    const fillHeader = (b) => header.replaceChildren(
      el("h1", {}, "Build ", el("span", { class: "mono" }, short(b.id)), " ", buildStatus(b)),
      el("div", { class: "grid" },
        kv([
          ["Started", when(b.started)], ["Ended", when(b.ended)], ["Duration", seconds(b.duration)],
          ["Runs", el("span", {}, counts(b.counts), ` (${b.total})`)],
          ["Roots", el("span", {}, b.roots.map((r) => [taskLink(r), " "]))],
          ["Command", el("code", {}, b.argv.join(" "))], ["Directory", el("code", {}, b.cwd)], ["Process", `${b.pid}`],
        ]),
        kv([
          ["Host", env.host], ["User", env.username], ["Python", env.python_version], ["Platform", env.platform],
          ["Stardag", env.stardag_version],
          ["Git commit", env.git_commit ? el("span", { class: "mono" }, env.git_commit, " ", env.git_dirty ? badge("dirty", "warn") : badge("clean", "ok")) : "\u2013"],
          ["Packages", env.packages ? el("details", {}, el("summary", {}, `${env.packages.length} installed`), el("pre", {}, env.packages.join("\n"))) : "\u2013"],
        ])));
    fillHeader(b);
    main.replaceChildren(header, el("h2", {}, "Timeline"), legend(), timeline, failures);
    const refresh = async (b) => {
      const runs = await allRuns(b.id);
      drawTimeline(timeline, b, runs);
      drawFailures(failures, runs);
    };
    await refresh(b);
    if (b.status === "running") {
      every(1500, async () => {
        const now = await api("/builds/" + b.id);
        fillHeader(now);
        await refresh(now);
      });
    }
  }

  async function allRuns(id) {
    let runs = [], offset = 0;
    for (let pages = 0; pages < 10 && offset !== null; pages++) {
      const page = await api(`/builds/${id}/runs?offset=${offset}&limit=500`);
      runs = runs.concat(page.runs); offset = page.next_offset;
    }
    return runs;
  }

  function legend() {
    return el("p", { class: "legend" }, [...OUTCOMES, "running"].map((o) => el("span", {}, el("i", { class: o }), o)));
  }

  function drawTimeline(box, b, runs) {
    const SVGNS = "http://www.w3.org/2000/svg";
    const s = (tag, attrs) => { const n = document.createElementNS(SVGNS, tag); for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v)); return n; };
    const start = new Date(b.started).getTime();
    const endOf = (r) => r.ended ? new Date(r.ended).getTime() : Date.now();
    const end = Math.max(b.ended ? new Date(b.ended).getTime() : Date.now(), ...runs.map(endOf), start + 1);
    const LABEL = 300, WIDTH = 1000, ROW = 18;
    const svg = s("svg", { viewBox: `0 0 ${LABEL + WIDTH + 10} ${runs.length * ROW + 24}`, role: "img", "aria-label": "build timeline" });
    const x = (t) => LABEL + (t - start) / (end - start) * WIDTH;
    svg.append(s("line", { class: "axis", x1: LABEL, y1: 0, x2: LABEL, y2: runs.length * ROW }));
    runs.forEach((r, i) => {
      const y = i * ROW;
      const a = s("a", { href: "/tasks/" + r.task_id, "data-nav": "" });
      const label = s("text", { x: 4, y: y + 13 }); label.textContent = `${r.label} ${short(r.task_id)}`.slice(0, 48);
      a.append(label); svg.append(a);
      const x1 = x(new Date(r.started).getTime()), x2 = x(endOf(r));
      const kind = r.ended ? r.outcome : "running";
      const bar = s("rect", { class: "bar " + kind, x: x1, y: y + 3, width: Math.max(2, x2 - x1), height: ROW - 6, "data-task": r.task_id });
      const tip = s("title"); tip.textContent = `${r.label}: ${r.outcome}, ${seconds(r.duration)}`; bar.append(tip);
      svg.append(bar);
    });
    const total = s("text", { x: LABEL, y: runs.length * ROW + 18 }); total.textContent = `0 \u2192 ${seconds((end - start) / 1000)}`;
    svg.append(total);
    box.replaceChildren(runs.length ? svg : el("p", { class: "muted" }, "No runs recorded (yet)."));
  }

  function drawFailures(box, runs) {
    const bad = runs.filter((r) => r.outcome === "failed");
    box.replaceChildren(...(bad.length ? [el("h2", {}, "Failures")] : []), ...bad.map((r) => el("div", { class: "failure" },
      el("p", {}, taskLink(r.task_id, r.label + " " + short(r.task_id)), ": ",
        el("strong", {}, r.error_type || "error"), " ", r.error_message || ""),
      r.traceback ? el("pre", { class: "traceback" }, r.traceback) : null)));
  }

  async function taskPage(id) {
    // A full id needs no lookup: ask for the lineage (the slowest answer) at once.
    let early = id.length === 64 ? api(`/tasks/${id}/lineage?direction=both`) : null;
    if (early) early.catch(() => {});
    const t = await api("/tasks/" + encodeURIComponent(id));
    if (t.id !== id) { history.replaceState(null, "", "/tasks/" + t.id); }
    document.title = `${t.label} \u00b7 Stardag`;
    const code = t.code;
    const changed = code.changed === true ? badge("code changed since this output was built", "warn")
      : code.changed === false ? badge("code unchanged", "ok") : el("span", { class: "muted" }, "unknown");
    const out = t.output;
    const preview = el("div", { id: "preview" }, el("p", { class: "muted" }, "Loading preview\u2026"));
    const runs = el("div", { id: "runs" });
    const graph = el("div", { class: "graph", id: "lineage" });
    const direction = el("select", { id: "direction", "aria-label": "direction" }, ["both", "up", "down"].map((d) => el("option", { value: d }, d)));
    const depth = el("select", { id: "depth", "aria-label": "depth" }, ["all", "1", "2", "3", "5", "10"].map((d) => el("option", { value: d }, d === "all" ? "all levels" : d + " levels")));
    const graphNote = el("span", { class: "muted", id: "lineage-note" });
    main.replaceChildren(
      el("h1", {}, t.label, " ", el("span", { class: "mono muted" }, short(t.id))),
      el("div", { class: "grid" },
        el("div", {}, el("h2", {}, "Task"), kv([
          ["Id", el("code", {}, t.id)], ["Name", t.name], ["Namespace", t.namespace || "\u2013"], ["Version", t.version || "\u2013"],
          ["First seen", when(t.first_seen)],
        ]), el("h2", {}, "Parameters"), params(t.params)),
        el("div", {}, el("h2", {}, "Output"), kv([
          ["Digest", out ? el("span", {}, el("code", { id: "digest" }, out.digest), " ", link("/search?q=" + out.digest, "others with these bytes")) : "none recorded"],
          ["Serializer", out ? out.serializer : "\u2013"],
          ["Size", out ? bytes(out.size_raw) + (out.size_stored ? ` (stored ${bytes(out.size_stored)})` : " (inline in its action record)") : "\u2013"],
          ["Written", out ? el("span", {}, when(out.created), out.build_id ? [" in build ", buildLink(out.build_id)] : "") : "\u2013"],
          ["In the store", t.complete === null ? "no configured store has a record" : t.complete ? badge("complete", "ok") : badge("incomplete: blob missing", "failed")],
          ["Store", t.store || "\u2013"],
        ]), el("h2", {}, "Code"), kv([
          ["Location", code.module ? el("code", {}, `${code.module}:${code.qualname}`) : "\u2013"],
          ["Built by", el("code", {}, short(code.built) || "\u2013")],
          ["Now", el("span", {}, el("code", {}, short(code.now || code.last_seen) || "\u2013"), code.path ? el("span", { class: "muted" }, " " + code.path) : code.now ? "" : el("span", { class: "muted" }, " (last run)"))],
          ["Changed", el("span", { id: "code-changed" }, changed)],
        ]))),
      el("h2", {}, "Preview"), preview,
      el("h2", {}, "Lineage"), el("div", { class: "controls" }, direction, depth, graphNote), graph,
      el("h2", {}, "Runs and audits"), runs);
    const drawGraph = async () => {
      const d = depth.value === "all" ? "" : "&depth=" + depth.value;
      graphNote.textContent = "loading\u2026";
      try {
        const fresh = direction.value === "both" && !d && early;
        const data = await (fresh || api(`/tasks/${t.id}/lineage?direction=${direction.value}${d}`));
        early = null;
        window.StardagGraph.draw(graph, data, t.id, (other) => go("/tasks/" + other));
        graphNote.textContent = `${data.nodes.length} tasks, ${data.edges.length} edges` + (data.truncated ? " (cut: the nearest shown)" : "") + "; click a task to open it, drag to pan, scroll to zoom" + (graph.dataset.labelled === "false" ? " (in, to read the names)" : "");
      } catch (error) { graphNote.textContent = ""; graph.replaceChildren(failed(error)); }
    };
    direction.addEventListener("change", drawGraph);
    depth.addEventListener("change", drawGraph);
    await Promise.all([drawGraph(), fillPreview(preview, t), fillRuns(runs, t)]);
  }

  function params(p) {
    const keys = Object.keys(p || {});
    if (!keys.length) return el("p", { class: "muted" }, "none");
    return el("table", { id: "params" }, keys.sort().map((k) => el("tr", {}, el("th", {}, k), el("td", {}, value(p[k])))));
  }

  function value(v) {
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v.$task === "string") {
      return el("span", {}, "task ", taskLink(v.$task));
    }
    if (typeof v === "string") return el("code", {}, JSON.stringify(v));
    return el("code", {}, JSON.stringify(v));
  }

  async function fillPreview(box, t) {
    if (!t.output || t.complete === null) { box.replaceChildren(el("p", { class: "muted" }, "No output to preview.")); return; }
    try {
      const p = await api(`/tasks/${t.id}/preview`);
      const parts = [];
      if (p.kind === "text" || p.kind === "bytes") parts.push(el("pre", { class: "preview" }, p.text));
      if (p.kind === "table") {
        parts.push(el("table", { class: "preview" }, el("thead", {}, el("tr", {}, p.columns.map((c) => el("th", {}, c)))),
          el("tbody", {}, p.rows.map((r) => el("tr", {}, r.map((c) => el("td", {}, c)))))));
        parts.push(el("p", { class: "muted" }, `${p.rows.length} of ${p.total_rows} rows`));
      }
      if (p.kind === "array") parts.push(kv([["Shape", el("code", {}, "(" + p.shape.join(", ") + ")")], ["Dtype", el("code", {}, p.dtype)]]));
      if (p.note) parts.push(el("p", { class: "muted" }, p.note));
      if (p.truncated) parts.push(el("p", { class: "muted" }, "(cut short)"));
      if (!p.verified) parts.push(el("p", { class: "muted" }, "Only the start was read, so it was not checked against the digest."));
      box.replaceChildren(...parts);
    } catch (error) { box.replaceChildren(failed(error)); }
  }

  async function fillRuns(box, t) {
    const runs = await api(`/tasks/${t.id}/history?limit=100`);
    if (!runs.length) { box.replaceChildren(el("p", { class: "muted" }, "No runs recorded.")); return; }
    box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ["Outcome", "Build", "Started", "Duration", "Output", "Code", "Note"].map((h) => el("th", {}, h)))),
      el("tbody", {}, runs.map((r) => el("tr", {},
        el("td", {}, badge(r.outcome), r.verdict ? [" ", badge(r.verdict)] : ""),
        el("td", { class: "mono" }, r.build_id === "audit" ? "audit" : buildLink(r.build_id)),
        el("td", {}, when(r.started)), el("td", {}, seconds(r.duration)),
        el("td", { class: "mono" }, r.digest ? link("/search?q=" + r.digest, short(r.digest)) : "\u2013"),
        el("td", { class: "mono" }, short(r.fingerprint) || "\u2013"),
        el("td", {}, r.error_message ? `${r.error_type || ""}: ${r.error_message}` : r.recorded_digest ? `recorded ${short(r.recorded_digest)}` : ""))))));
  }

  async function searchPage(params) {
    const q = (params.get("q") || "").trim();
    document.getElementById("search-q").value = q;
    document.title = `Search ${q} \u00b7 Stardag`;
    if (!q) { main.replaceChildren(el("h1", {}, "Search"), el("p", { class: "muted" }, "Search by task name, task id prefix, output digest or build id.")); return; }
    const r = await api("/search?q=" + encodeURIComponent(q));
    const parts = [el("h1", {}, "Search: ", el("span", { class: "mono" }, q))];
    if (r.digests.length) {
      parts.push(el("h2", {}, "Outputs"), el("ul", { id: "digests" }, r.digests.map((d) => el("li", {}, el("code", {}, d.digest), " produced by ",
        d.producers.map((p) => [taskLink(p.id, `${p.label} ${short(p.id)}`), " "])))));
    }
    if (r.builds.length) parts.push(el("h2", {}, "Builds"), el("ul", { id: "found-builds" }, r.builds.map((b) => el("li", {}, buildLink(b)))));
    const families = Object.entries(r.families || {});
    if (families.length) {
      parts.push(el("h2", {}, "Task families"), el("p", { id: "families" }, families.map(([label, n]) =>
        el("span", { class: "family" }, el("code", {}, label), ` ${n} task${n === 1 ? "" : "s"}`, "\u2003"))));
    }
    parts.push(el("h2", {}, "Tasks"));
    parts.push(r.tasks.length ? el("table", { id: "found-tasks" }, el("tbody", {}, r.tasks.map((t) => el("tr", {},
      el("td", {}, taskLink(t.id, t.label)), el("td", { class: "mono" }, short(t.id)), el("td", {}, t.version ? "v" + t.version : ""), el("td", {}, when(t.first_seen))))))
      : el("p", { class: "muted" }, "No task matches."));
    main.replaceChildren(...parts);
  }

  async function storePage() {
    document.title = "Store \u00b7 Stardag";
    const s = await api("/store");
    const gc = el("div", { id: "gc" }, el("p", { class: "muted" }, "Computing what gc would free\u2026"));
    const stat = (label, v) => el("div", {}, el("span", {}, label), el("div", { class: "stat" }, v));
    main.replaceChildren(
      el("h1", {}, "Store"),
      el("div", { class: "stats", id: "store-stats" },
        stat("Outputs recorded", String(s.outputs)), stat("Distinct blobs", String(s.blobs)),
        stat("Stored (compressed)", bytes(s.bytes_stored)), stat("Distinct, uncompressed", bytes(s.bytes_unique)),
        stat("Every output, uncompressed", bytes(s.bytes_raw)),
        stat("Compression", ratio(s.compression_ratio)), stat("Deduplication", ratio(s.dedup_ratio))),
      kv([["Registry", el("code", {}, s.registry)], ...Object.entries(s.roots).map(([k, u]) => [`Root "${k}"`, el("code", {}, u)])]),
      el("h2", {}, "Garbage collection (dry run, default policy)"), gc);
    const show = (g) => {
      if (g.state === "failed") { gc.replaceChildren(el("p", { class: "error" }, g.error)); return true; }
      if (g.state !== "ready") return false;
      const parts = [kv([["Store", el("code", {}, g.store)], ["Policy", g.policy], ["On disk", `${g.blobs_on_disk} blobs, ${bytes(g.bytes_on_disk)}`], ["Computed", when(g.finished)]])];
      if (g.refused) parts.push(el("p", { class: "notice", id: "gc-refused" }, "gc would refuse: " + g.refused));
      else {
        parts.push(el("p", { id: "gc-summary" }, `stardag gc would delete ${g.records} records and ${g.blobs} blobs, freeing ${bytes(g.bytes)}.`));
        if (g.by_family.length) parts.push(el("table", { id: "gc-families" }, el("thead", {}, el("tr", {}, el("th", {}, "Task family"), el("th", {}, "Records and blobs"), el("th", {}, "Bytes"))),
          el("tbody", {}, g.by_family.map((f) => el("tr", {}, el("td", {}, f.family), el("td", {}, String(f.count)), el("td", {}, bytes(f.bytes)))))));
        const kept = Object.entries(g.kept);
        if (kept.length) parts.push(el("h2", {}, "Kept, and why"), el("table", { id: "gc-kept" }, el("tbody", {}, kept.sort().map(([why, n]) => el("tr", {}, el("td", {}, why), el("td", {}, String(n)))))));
      }
      const again = el("button", { type: "button" }, "Compute again");
      again.addEventListener("click", async () => { gc.replaceChildren(el("p", { class: "muted" }, "Computing\u2026")); await api("/store/gc?refresh=true"); poll(); });
      parts.push(el("p", {}, again));
      gc.replaceChildren(...parts);
      return true;
    };
    const mine = generation;
    const poll = async () => {
      while (mine === generation) {
        const g = await api("/store/gc");
        if (show(g)) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    await poll();
  }

  // -- routing ------------------------------------------------------------------------------
  async function render() {
    generation++;
    timers.forEach(clearInterval); timers = [];
    const path = location.pathname;
    try {
      let m;
      if (path === "/") await buildsPage();
      else if ((m = path.match(/^\/builds\/([0-9a-f]{1,64})$/))) await buildPage(m[1]);
      else if ((m = path.match(/^\/tasks\/([0-9a-f]{1,64})$/))) await taskPage(m[1]);
      else if (path === "/search") await searchPage(new URLSearchParams(location.search));
      else if (path === "/store") await storePage();
      else main.replaceChildren(el("h1", {}, "Not found"), el("p", {}, link("/", "Back to the builds")));
    } catch (error) {
      main.replaceChildren(failed(error));
    }
    document.body.dataset.ready = String(generation);
  }

  function go(href) {
    history.pushState(null, "", href);
    window.scrollTo(0, 0);
    render();
  }

  document.addEventListener("click", (ev) => {
    const a = ev.target.closest ? ev.target.closest("a[data-nav]") : null;
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    ev.preventDefault();
    go(a.getAttribute("href"));
  });
  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    go("/search?q=" + encodeURIComponent(document.getElementById("search-q").value.trim()));
  });
  window.addEventListener("popstate", render);
  render();
})();
