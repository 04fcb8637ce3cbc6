// Lineage graphs as SVG, laid out here (no library): layers by longest path from the
// sources (data flows left to right, from a dependency to the task that uses it), the
// order within each layer by a few barycenter sweeps, then cubic edges. Every label is
// set as text (textContent), never parsed as markup.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 190, H = 38, GAP_X = 70, GAP_Y = 14;
  const READABLE = 2; // graph units per screen pixel at most, for names (12 units) to be drawn

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function layout(nodes, edges) {
    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const deps = nodes.map(() => []), users = nodes.map(() => []);
    for (const e of edges) {
      const t = index.get(e.task_id), d = index.get(e.dep_id);
      if (t === undefined || d === undefined || t === d) continue;
      deps[t].push(d); users[d].push(t);
    }
    // Nodes arrive in topological order (dependencies first): one pass gives the layers.
    const layer = new Array(nodes.length).fill(0);
    const order = topological(nodes.length, deps, users);
    for (const i of order) for (const d of deps[i]) layer[i] = Math.max(layer[i], layer[d] + 1);
    const layers = [];
    for (const i of order) (layers[layer[i]] = layers[layer[i]] || []).push(i);
    const pos = new Float64Array(nodes.length);
    layers.forEach((members) => members.forEach((i, k) => { pos[i] = k; }));
    for (let sweep = 0; sweep < 4; sweep++) {
      const forward = sweep % 2 === 0;
      const seq = forward ? layers.slice(1) : layers.slice(0, -1).reverse();
      for (const members of seq) {
        const near = forward ? deps : users;
        const key = new Map();
        for (const i of members) {
          const around = near[i];
          key.set(i, around.length ? around.reduce((s, j) => s + pos[j], 0) / around.length : pos[i]);
        }
        members.sort((a, b) => key.get(a) - key.get(b));
        members.forEach((i, k) => { pos[i] = k; });
      }
    }
    const tallest = Math.max(1, ...layers.map((m) => m.length));
    const xy = new Array(nodes.length);
    layers.forEach((members, l) => {
      const offset = (tallest - members.length) * (H + GAP_Y) / 2;
      members.forEach((i, k) => { xy[i] = [l * (W + GAP_X), offset + k * (H + GAP_Y)]; });
    });
    return { xy, deps, width: layers.length * (W + GAP_X) - GAP_X, height: tallest * (H + GAP_Y) - GAP_Y };
  }

  function topological(count, deps, users) {
    // Kahn's algorithm, robust to any order the nodes come in (and to a stray cycle).
    const waiting = deps.map((d) => d.length), ready = [], order = [];
    let head = 0;
    for (let i = 0; i < count; i++) if (!waiting[i]) ready.push(i);
    while (head < ready.length) {
      const i = ready[head++]; order.push(i);
      for (const u of users[i]) if (--waiting[u] === 0) ready.push(u);
    }
    if (order.length < count) for (let i = 0; i < count; i++) if (waiting[i] > 0) order.push(i);
    return order;
  }

  function labels(n) {
    const label = svg("text", { x: 8, y: 16 }); label.textContent = clip(n.label, 26);
    const sub = svg("text", { x: 8, y: 30, class: "sub" }); sub.textContent = n.id.slice(0, 12) + (n.version ? "  v" + clip(n.version, 8) : "");
    return [label, sub];
  }

  function clip(text, size) { return text.length > size ? text.slice(0, size - 1) + "\u2026" : text; }

  // Draws `data` ({nodes, edges}) into `container`; `onOpen(id)` when a node is clicked.
  function draw(container, data, current, onOpen) {
    const started = performance.now();
    container.replaceChildren();
    const nodes = data.nodes, { xy, deps, width, height } = layout(nodes, data.edges);
    const root = svg("svg", { role: "img", "aria-label": "lineage graph" });
    // Small graphs at their natural size; large ones whole, to zoom into.
    const tall = Math.min(560, Math.max(140, height + 60));
    container.style.height = tall + "px";
    const wide = container.clientWidth || 1000;
    const scale = Math.max(1, (width + 40) / wide, (height + 40) / tall);
    // Centred: a zoom at the middle of the box lands on the graph, not beside it.
    const view = { x: (width - wide * scale) / 2, y: (height - tall * scale) / 2, w: wide * scale, h: tall * scale };
    // Names are drawn only where they can be read: in or near the view, zoomed in enough.
    // Text is most of what a big graph costs the browser (every zoom lays out each name
    // again), and a thousand tasks drawn whole would leave each name a pixel or two high.
    const boxes = [];
    const setView = () => {
      root.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
      const readable = Math.max(view.w / wide, view.h / tall) <= READABLE;
      const mx = view.w / 4, my = view.h / 4;
      for (const b of boxes) {
        const want = readable && b.x + W > view.x - mx && b.x < view.x + view.w + mx &&
          b.y + H > view.y - my && b.y < view.y + view.h + my;
        if (want && !b.names) { b.names = labels(b.node); b.g.append(...b.names); }
        else if (!want && b.names) { for (const t of b.names) t.remove(); b.names = null; }
      }
      container.dataset.labelled = String(boxes.some((b) => b.names));
    };
    const edgeLayer = svg("g"), nodeLayer = svg("g");
    const kinds = new Map(data.edges.map((e) => [e.task_id + ">" + e.dep_id, e.kind]));
    nodes.forEach((n, i) => {
      for (const d of deps[i]) {
        const [x1, y1] = xy[d], [x2, y2] = xy[i];
        const sx = x1 + W, sy = y1 + H / 2, tx = x2, ty = y2 + H / 2, mid = (sx + tx) / 2;
        const kind = kinds.get(n.id + ">" + nodes[d].id) || "static";
        edgeLayer.appendChild(svg("path", { class: "edge " + kind, d: `M${sx},${sy} C${mid},${sy} ${mid},${ty} ${tx},${ty}` }));
      }
    });
    nodes.forEach((n, i) => {
      const [x, y] = xy[i];
      const classes = ["node", n.known ? (n.digest ? "complete" : "") : "unknown", n.id === current ? "current" : ""];
      const g = svg("g", { class: classes.join(" ").trim(), transform: `translate(${x},${y})`, tabindex: 0,
        role: "link", "data-id": n.id });
      const title = svg("title"); title.textContent = `${n.label} ${n.id}`;
      g.append(title, svg("rect", { width: W, height: H }));
      boxes.push({ g, node: n, x, y, names: null });
      nodeLayer.appendChild(g);
    });
    setView();
    // One listener for every node: the node under the event names itself by data-id.
    const opened = (ev) => {
      const node = ev.target.closest && ev.target.closest(".node");
      if (node) onOpen(node.dataset.id);
    };
    nodeLayer.addEventListener("click", opened);
    nodeLayer.addEventListener("keydown", (ev) => { if (ev.key === "Enter") opened(ev); });
    root.append(edgeLayer, nodeLayer);
    panAndZoom(root, view, setView);
    container.appendChild(root);
    const ms = performance.now() - started;
    container.dataset.drawnMs = ms.toFixed(1);
    container.dataset.nodes = String(nodes.length);
    delete container.dataset.paintedMs;
    // After the next frame is painted: the time since navigation (what a person waits).
    requestAnimationFrame(() => setTimeout(() => {
      container.dataset.paintedMs = performance.now().toFixed(1);
    }, 0));
    return ms;
  }

  function panAndZoom(root, view, setView) {
    let drag = null;
    root.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const box = root.getBoundingClientRect();
      const fx = (ev.clientX - box.left) / box.width, fy = (ev.clientY - box.top) / box.height;
      const scale = ev.deltaY > 0 ? 1.15 : 1 / 1.15;
      const w = view.w * scale, h = view.h * scale;
      view.x += (view.w - w) * fx; view.y += (view.h - h) * fy; view.w = w; view.h = h;
      setView();
    }, { passive: false });
    root.addEventListener("pointerdown", (ev) => {
      if (ev.target.closest && ev.target.closest(".node")) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y };
      root.classList.add("dragging");
    });
    root.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      const box = root.getBoundingClientRect();
      view.x = drag.vx - (ev.clientX - drag.x) * view.w / box.width;
      view.y = drag.vy - (ev.clientY - drag.y) * view.h / box.height;
      setView();
    });
    const stop = () => { drag = null; root.classList.remove("dragging"); };
    root.addEventListener("pointerup", stop);
    root.addEventListener("pointerleave", stop);
  }

  window.StardagGraph = { draw, layout };
})();
