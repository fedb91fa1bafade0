"""Drives headless Chromium through meshd's service graph page, over the DevTools protocol on a
pipe (--remote-debugging-pipe: no port, no extra package), and prints what it saw as JSON.

Usage: graph_page.py CHROMIUM BASE_URL TOKEN SCREENSHOT_DIR [EDGE_ID]

1. Opens BASE_URL/ui/graph with no cookie: records whether the login form or any graph is shown,
   and what /ui/api/graph answers from inside the page.
2. Signs in with TOKEN through the form, waits for the graph's edges, and records every node, edge
   (data attributes and stroke colour), split row, the cookie's flags, and whether any injected
   script ran (window.__xss) or any <img> exists.
3. Clicks EDGE_ID (or the first edge) and records the detail chart.
Screenshots: login.png, graph.png, edge.png in SCREENSHOT_DIR. Every wait is bounded.
"""

import json
import os
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, chromium, profile):
        read_parent, write_child = os.pipe()  # the browser writes to fd 4
        read_child, write_parent = os.pipe()  # the browser reads from fd 3

        def child():
            # Move both ends out of the way first, then onto 3 and 4 (kept open by pass_fds).
            reading, writing = os.dup(read_child), os.dup(write_child)
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-sync", "--window-size=1400,900",
             "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=child)
        os.close(read_child)
        os.close(write_child)
        self.reader = os.fdopen(read_parent, "rb", buffering=0)
        self.writer = os.fdopen(write_parent, "wb", buffering=0)
        self.next_id = 0
        self.buffer = b""
        self.session = None

    def send(self, method, params=None, session=True, timeout=15):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while time.time() < deadline:
            while b"\0" not in self.buffer:
                chunk = self.reader.read(65536)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
        raise RuntimeError("no answer to " + method)

    def open(self):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.send("Page.enable")
        self.send("Network.enable")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError("script failed: %s" % result["exceptionDetails"])
        return result["result"].get("value")

    def wait(self, expression, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.evaluate(expression):
                return True
            time.sleep(0.2)
        return False

    def navigate(self, url):
        self.send("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete' && location.href !== 'about:blank'", 15)

    def screenshot(self, path):
        import base64
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


DOM = """(() => ({
  loginForm: !!document.querySelector('form[action="/ui/login"]'),
  graph: !!document.querySelector('svg#graph'),
  nodes: [...document.querySelectorAll('g.node')].map(g => ({id: g.dataset.id, sync: g.dataset.sync,
      notSynced: g.classList.contains('not-synced'), label: g.querySelector('text') ? g.querySelector('text').textContent : null})),
  edges: [...document.querySelectorAll('g.edge')].map(g => ({id: g.dataset.id, source: g.dataset.source, target: g.dataset.target,
      rate: parseFloat(g.dataset.rate), errorRate: parseFloat(g.dataset.errorRate), security: g.dataset.security,
      protocol: g.dataset.protocol, p50: g.dataset.p50, p99: g.dataset.p99,
      color: getComputedStyle(g.querySelector('path')).stroke, dashed: getComputedStyle(g.querySelector('path')).strokeDasharray})),
  splits: [...document.querySelectorAll('tr.split')].map(r => ({virtualService: r.dataset.virtualService, version: r.dataset.version,
      cells: [...r.cells].map(c => c.textContent)})),
  namespaces: [...document.querySelectorAll('g.namespace')].map(g => g.dataset.namespace),
  images: document.querySelectorAll('img').length,
  scripts: document.querySelectorAll('script').length,
  xss: window.__xss === true,
}))()"""


def main(chromium, base, token, shots, edge):
    os.makedirs(shots, exist_ok=True)
    out = {}
    with tempfile.TemporaryDirectory() as profile:
        browser = Browser(chromium, profile)
        try:
            browser.open()
            browser.navigate(base + "/ui/graph")
            out["anonymous"] = browser.evaluate(DOM)
            out["anonymous"]["api"] = browser.evaluate("fetch('/ui/api/graph').then(r => r.status)")
            browser.screenshot(os.path.join(shots, "login.png"))

            browser.evaluate("document.querySelector('#token').value = %s; document.querySelector('#login-form').submit(); true" % json.dumps(token))
            out["edgesShown"] = browser.wait("document.querySelectorAll('g.edge').length > 0 && location.pathname === '/ui/graph'", 30)
            # One more refresh, so the figures are the newest.
            time.sleep(2.5)
            out["signedIn"] = browser.evaluate(DOM)
            cookies = browser.send("Network.getCookies", {"urls": [base + "/ui/graph"]})["cookies"]
            out["cookies"] = [{"name": c["name"], "httpOnly": c["httpOnly"], "sameSite": c.get("sameSite"), "path": c["path"]} for c in cookies]
            out["cookieVisibleToScript"] = browser.evaluate("document.cookie.includes('meshd_ui')")
            browser.screenshot(os.path.join(shots, "graph.png"))

            found = browser.evaluate("""(() => { const id = %s;
                const edge = [...document.querySelectorAll('g.edge')].find(g => id === null || g.dataset.id === id);
                if (!edge) return false;
                edge.dispatchEvent(new MouseEvent('click', {bubbles: true})); return true; })()""" % json.dumps(edge))
            out["edgeClicked"] = found
            out["edgeShown"] = browser.wait("!document.querySelector('#edge-detail').hidden && document.querySelectorAll('#edge-chart polyline').length === 2", 15)
            out["edgeDetail"] = browser.evaluate("""(() => ({title: document.querySelector('#edge-title').textContent,
                rows: document.querySelectorAll('#edge-table tr').length - 1,
                points: document.querySelector('#edge-chart polyline.rate-line').getAttribute('points').split(' ').length}))()""")
            browser.screenshot(os.path.join(shots, "edge.png"))
        except Exception as error:
            out["error"] = str(error)
            try:
                out["location"] = browser.evaluate("location.href + ' | ' + document.title + ' | ' + document.body.innerText.slice(0, 300)")
            except Exception:
                pass
        finally:
            browser.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
