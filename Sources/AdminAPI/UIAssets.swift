/// The service graph page's HTML, script and style. The script builds every element with DOM
/// calls and sets names with `textContent` only; the content security policy (``UIRoutes``)
/// allows no inline script.
enum UIAssets {
    /// The login form; `message` is meshd's own text.
    static func loginPage(message: String?) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>meshd · sign in</title>
        <link rel="stylesheet" href="/ui/graph.css"></head>
        <body class="login">
        <main id="login">
        <h1>meshd service graph</h1>
        <p>Sign in with a reader or admin token (<code>meshctl token create --role reader</code>).</p>
        \(message.map { "<p class=\"error\" id=\"login-error\">\($0)</p>" } ?? "")
        <form method="post" action="/ui/login" id="login-form">
        <label for="token">Token</label>
        <input type="password" name="token" id="token" autocomplete="off" required>
        <button type="submit">Sign in</button>
        </form>
        </main>
        </body></html>

        """
    }

    /// The graph page: empty until the script fills it from `/ui/api/graph`.
    static let graphPage = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>meshd · service graph</title>
        <link rel="stylesheet" href="/ui/graph.css"></head>
        <body>
        <header>
        <h1>meshd service graph</h1>
        <span id="status">loading…</span>
        <form method="post" action="/ui/logout"><button type="submit">Sign out</button></form>
        </header>
        <div id="legend">
        <span class="swatch ok"></span> no errors
        <span class="swatch warn"></span> 10 % errors
        <span class="swatch bad"></span> ≥ 20 % errors ·
        solid: mTLS · dashed: plaintext or unknown · ○ workload · ▭ service · red ring: proxy not SYNCED
        </div>
        <svg id="graph" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="service graph"></svg>
        <section id="edge-detail" hidden><h2 id="edge-title"></h2><svg id="edge-chart" xmlns="http://www.w3.org/2000/svg"></svg><table id="edge-table"></table></section>
        <section id="splits"><h2>Canary splits (configured → observed)</h2><table id="split-table"></table></section>
        <script src="/ui/graph.js"></script>
        </body></html>

        """

    static let style = """
        body { font: 14px system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
        header { display: flex; gap: 1em; align-items: center; padding: 0.5em 1em; background: #263238; color: #fff; }
        header h1 { font-size: 1.1em; margin: 0; }
        header form { margin-left: auto; }
        #legend { padding: 0.4em 1em; font-size: 12px; color: #555; }
        .swatch { display: inline-block; width: 1.6em; height: 0.5em; margin-left: 0.8em; }
        .swatch.ok { background: hsl(120, 65%, 38%); } .swatch.warn { background: hsl(60, 70%, 42%); } .swatch.bad { background: hsl(0, 75%, 45%); }
        #graph { display: block; width: 100%; background: #fff; border-top: 1px solid #ddd; border-bottom: 1px solid #ddd; }
        .namespace-label { font-weight: 600; fill: #37474f; }
        .namespace-box { fill: #eceff1; stroke: #cfd8dc; }
        .node circle, .node rect { fill: #fff; stroke: #546e7a; stroke-width: 1.5; }
        .node.not-synced circle, .node.not-synced rect { stroke: #c62828; stroke-width: 4; }
        .node text { font-size: 11px; fill: #263238; }
        .edge path { fill: none; stroke-width: 3; cursor: pointer; }
        .edge.plaintext path { stroke-dasharray: 6 4; }
        .edge text { font-size: 10px; fill: #37474f; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
        .edge.selected path { stroke-width: 6; }
        section { padding: 0.5em 1em; }
        table { border-collapse: collapse; }
        td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        #edge-chart { width: 640px; height: 160px; background: #fff; border: 1px solid #ddd; }
        #edge-chart polyline { fill: none; stroke-width: 2; }
        .rate-line { stroke: #1565c0; } .error-line { stroke: #c62828; }
        body.login main { max-width: 28em; margin: 4em auto; background: #fff; padding: 1.5em 2em; border: 1px solid #ddd; }
        .error { color: #c62828; }
        input { width: 100%; margin: 0.5em 0 1em; padding: 0.4em; box-sizing: border-box; }

        """

    static let script = #"""
        "use strict";
        const SVG = "http://www.w3.org/2000/svg";
        let selected = null;

        function svg(name, attributes) {
          const element = document.createElementNS(SVG, name);
          for (const [key, value] of Object.entries(attributes || {})) element.setAttribute(key, String(value));
          return element;
        }
        function text(name, content, attributes) {
          const element = svg(name, attributes);
          element.textContent = content;
          return element;
        }
        // 0 % errors is green, 20 % and more red.
        function heat(errorRate) {
          const share = Math.min(Math.max(errorRate / 0.2, 0), 1);
          return "hsl(" + Math.round(120 * (1 - share)) + ", " + Math.round(65 + 10 * share) + "%, " + Math.round(38 + 7 * share) + "%)";
        }
        function number(value, digits) { return value === null || value === undefined ? "–" : value.toFixed(digits); }
        function shortName(node) {
          if (node.kind === "service") return node.name.split(".")[0] + " (svc)";
          return node.name;
        }

        // Per namespace: workloads that only call on the left, services in the middle, workloads
        // that answer on the right.
        function layout(graph) {
          const answering = new Set(graph.edges.filter(edge => edge.source.startsWith("service:")).map(edge => edge.target));
          const columns = new Map();
          for (const node of graph.nodes) {
            if (!columns.has(node.namespace)) columns.set(node.namespace, { callers: [], services: [], servers: [] });
            const column = columns.get(node.namespace);
            if (node.kind === "service") column.services.push(node);
            else if (answering.has(node.id)) column.servers.push(node);
            else column.callers.push(node);
          }
          const positions = new Map();
          const boxes = [];
          let x = 20;
          const width = 460, row = 70, top = 60;
          for (const namespace of graph.namespaces) {
            const column = columns.get(namespace) || { callers: [], services: [], servers: [] };
            const rows = Math.max(column.callers.length, column.services.length, column.servers.length, 1);
            boxes.push({ namespace: namespace, x: x, y: 10, width: width - 20, height: top + rows * row });
            column.callers.forEach((node, index) => positions.set(node.id, { x: x + 70, y: top + 20 + index * row }));
            column.services.forEach((node, index) => positions.set(node.id, { x: x + 220, y: top + 20 + index * row }));
            column.servers.forEach((node, index) => positions.set(node.id, { x: x + 370, y: top + 20 + index * row }));
            x += width;
          }
          const height = Math.max(...boxes.map(box => box.y + box.height), 200) + 20;
          return { positions: positions, boxes: boxes, width: Math.max(x, 400), height: height };
        }

        function render(graph) {
          const root = document.getElementById("graph");
          const placed = layout(graph);
          root.replaceChildren();
          root.setAttribute("viewBox", "0 0 " + placed.width + " " + placed.height);
          root.setAttribute("height", placed.height);
          for (const box of placed.boxes) {
            const group = svg("g", { class: "namespace", "data-namespace": box.namespace });
            group.append(svg("rect", { class: "namespace-box", x: box.x, y: box.y, width: box.width, height: box.height, rx: 8 }));
            group.append(text("text", box.namespace, { class: "namespace-label", x: box.x + 10, y: box.y + 20 }));
            root.append(group);
          }
          const edges = svg("g", { id: "edges" });
          root.append(edges);
          for (const edge of graph.edges) {
            const from = placed.positions.get(edge.source), to = placed.positions.get(edge.target);
            if (!from || !to) continue;
            const group = svg("g", {
              class: "edge" + (edge.security === "mutual_tls" ? " mtls" : " plaintext") + (selected === edge.id ? " selected" : ""),
              "data-id": edge.id, "data-source": edge.source, "data-target": edge.target,
              "data-rate": edge.requestRate.toFixed(3), "data-error-rate": edge.errorRate.toFixed(4),
              "data-security": edge.security, "data-protocol": edge.protocolName,
              "data-p50": number(edge.p50, 1), "data-p99": number(edge.p99, 1),
            });
            const middle = (from.x + to.x) / 2;
            const path = svg("path", { d: "M" + from.x + "," + from.y + " C" + middle + "," + from.y + " " + middle + "," + to.y + " " + to.x + "," + to.y });
            path.style.stroke = heat(edge.errorRate);
            group.append(path);
            const label = edge.requestRate.toFixed(1) + " rps · " + (edge.errorRate * 100).toFixed(1) + " %";
            const detail = label + " · p50 " + number(edge.p50, 0) + " / p99 " + number(edge.p99, 0) + " ms · " + edge.protocolName + " · " + edge.security;
            // The label sits near the target end, where edges into one node spread out.
            group.append(text("text", label, { class: "edge-label", x: from.x + (to.x - from.x) * 0.62, y: from.y + (to.y - from.y) * 0.62 - 5, "text-anchor": "middle" }));
            group.append(text("title", edge.source + " → " + edge.target + ": " + detail));
            group.addEventListener("click", () => showEdge(edge.id));
            edges.append(group);
          }
          for (const node of graph.nodes) {
            const at = placed.positions.get(node.id);
            if (!at) continue;
            const synced = node.kind !== "workload" || node.sync === "SYNCED";
            const group = svg("g", { class: "node " + node.kind + (synced ? "" : " not-synced"), "data-id": node.id, "data-sync": node.sync || "" });
            if (node.kind === "service") group.append(svg("rect", { x: at.x - 14, y: at.y - 10, width: 28, height: 20, rx: 3 }));
            else group.append(svg("circle", { cx: at.x, cy: at.y, r: 11 }));
            group.append(text("text", shortName(node), { x: at.x, y: at.y + 26, "text-anchor": "middle" }));
            group.append(text("title", node.id + (node.version ? " version " + node.version : "") + (node.sync ? " · " + node.sync : "")));
            root.append(group);
          }
          renderSplits(graph.splits);
          document.getElementById("status").textContent =
            graph.nodes.length + " nodes, " + graph.edges.length + " edges over " + Math.round(graph.windowSeconds) + " s · " + new Date(graph.generatedAt * 1000).toLocaleTimeString();
        }

        function cell(row, content, header) {
          const element = document.createElement(header ? "th" : "td");
          element.textContent = content;
          row.append(element);
        }
        function renderSplits(splits) {
          const table = document.getElementById("split-table");
          table.replaceChildren();
          const head = table.insertRow();
          for (const title of ["VirtualService", "service", "version", "configured %", "observed %"]) cell(head, title, true);
          for (const split of splits) {
            for (const share of split.shares) {
              const row = table.insertRow();
              row.className = "split";
              row.dataset.virtualService = split.virtualService;
              row.dataset.version = share.version;
              cell(row, split.virtualService); cell(row, split.service); cell(row, share.version);
              cell(row, share.configured === null || share.configured === undefined ? "–" : share.configured.toFixed(0));
              cell(row, share.observed.toFixed(1));
            }
          }
        }

        async function showEdge(id) {
          selected = id;
          for (const element of document.querySelectorAll("g.edge")) element.classList.toggle("selected", element.dataset.id === id);
          const response = await fetch("/ui/api/edge?id=" + encodeURIComponent(id), { credentials: "same-origin" });
          if (!response.ok) return;
          const series = await response.json();
          const section = document.getElementById("edge-detail");
          section.hidden = false;
          document.getElementById("edge-title").textContent = series.source + " → " + series.target;
          const chart = document.getElementById("edge-chart");
          chart.replaceChildren();
          chart.setAttribute("viewBox", "0 0 640 160");
          const points = series.points;
          const maxRate = Math.max(...points.map(point => point.requestRate), 0.001);
          const step = points.length > 1 ? 620 / (points.length - 1) : 0;
          const line = (pick, scale, cls) => {
            const polyline = svg("polyline", { class: cls, points: points.map((point, index) => (10 + index * step).toFixed(1) + "," + (150 - pick(point) / scale * 140).toFixed(1)).join(" ") });
            chart.append(polyline);
          };
          line(point => point.requestRate, maxRate, "rate-line");
          line(point => point.errorRate, 1, "error-line");
          const table = document.getElementById("edge-table");
          table.replaceChildren();
          const head = table.insertRow();
          for (const title of ["time", "requests/s", "errors %", "p99 ms"]) cell(head, title, true);
          for (const point of points.slice(-12)) {
            const row = table.insertRow();
            cell(row, new Date(point.time * 1000).toLocaleTimeString()); cell(row, point.requestRate.toFixed(2));
            cell(row, (point.errorRate * 100).toFixed(1)); cell(row, number(point.p99, 1));
          }
        }

        async function refresh() {
          try {
            const response = await fetch("/ui/api/graph", { credentials: "same-origin" });
            if (response.status === 401) { window.location.assign("/ui/graph"); return; }
            render(await response.json());
            if (selected) showEdge(selected);
          } catch (error) {
            document.getElementById("status").textContent = "cannot reach meshd: " + error;
          }
        }
        refresh();
        setInterval(refresh, 2000);

        """#
}
