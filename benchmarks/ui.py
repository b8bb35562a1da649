"""Web UI benchmark in headless chromium: the workflow list with 1,000 workflows and the page of one
workflow whose DAG has 2,000 nodes, each timed from navigation start to drawn, plus the longest task
that blocked the page's main thread meanwhile (what "freezing" means to a person).

Writes the workflows straight into a store, starts `reconciler up` on it, and drives Debian's chromium
through Selenium (apt-get install chromium chromium-driver; pip install selenium).

    python benchmarks/ui.py [--workflows 1000] [--nodes 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from api import TOKEN, free_port, workflow  # benchmarks/api.py: the same 1,000 stored workflows
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from reconciler.store import open_store

# Resolves with [ms from navigation start until `ready()` holds, longest main-thread task in ms].
MEASURE = """
const [ready, done] = [new Function('return ' + arguments[0]), arguments[arguments.length - 1]];
let longest = 0;
try {
  new PerformanceObserver(list => { for (const e of list.getEntries()) longest = Math.max(longest, e.duration) })
    .observe({type: 'longtask', buffered: true});
} catch (e) { longest = -1 }
const give_up = performance.now() + 100000;
const tick = () => ready() ? setTimeout(() => done([performance.now(), longest]), 50)
  : performance.now() > give_up ? done([-1, longest]) : setTimeout(tick, 20);
tick();
"""


def dag(nodes: int, width: int = 50) -> dict:
    """A DAG workflow of `nodes` pod nodes in layers of `width`, each depending on two of the layer above."""
    name = "big-dag"
    status = {name: {"id": name, "name": name, "displayName": name, "type": "DAG", "phase": "Failed",
                     "templateName": "main", "children": [f"{name}-{k}" for k in range(min(width, nodes))]}}
    phases = ("Succeeded", "Running", "Pending", "Failed")
    for k in range(nodes):
        below = [f"{name}-{j}" for j in (k + width, k + width + 1) if j < nodes and (j // width) == (k // width) + 1]
        status[f"{name}-{k}"] = {"id": f"{name}-{k}", "name": f"{name}.t{k}", "displayName": f"t{k}", "type": "Pod",
                                 "phase": phases[(k // width) % 4], "templateName": "step", "children": below}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {"entrypoint": "main", "templates": [{"name": "main", "dag": {"tasks": []}}]},
            # finished, so the daemon leaves it as it is
            "status": {"phase": "Failed", "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T01:00:00Z",
                       "nodes": status}}


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_script_timeout(300)
    return driver


def timed(driver: webdriver.Chrome, url: str, ready: str) -> tuple[float, float]:
    driver.get("about:blank")
    driver.get(url)
    return tuple(driver.execute_async_script(MEASURE, ready))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        with open_store(home / "store.db") as store:
            for i in range(args.workflows):
                store.create(workflow(i, 3))
            store.create(dag(args.nodes))
        port = free_port()
        env = {**os.environ, "RECONCILER_HOME": str(home), "RECONCILER_API_TOKEN": TOKEN}
        daemon = subprocess.Popen([sys.executable, "-m", "reconciler.cli.main", "up", "--listen", f"127.0.0.1:{port}"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        driver = None
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310 - our own daemon
                    break
                except OSError:
                    time.sleep(0.1)
            driver = browser()
            driver.get(f"{base}/ui/")
            driver.execute_script("sessionStorage.setItem('reconciler.token', arguments[0])", TOKEN)
            listed = f"document.getElementById('main').dataset.rendered === '{args.workflows + 1}'"  # + the DAG
            drawn = f"(document.getElementById('graph') || {{dataset: {{}}}}).dataset.drawn === '{args.nodes + 1}'"
            for label, url, ready in ((f"list of {args.workflows} workflows", f"{base}/ui/#/workflows", listed),
                                      (f"DAG of {args.nodes} nodes", f"{base}/ui/#/workflows/bench/big-dag", drawn)):
                results = [timed(driver, url, ready) for _ in range(args.runs)]
                loads = [r[0] for r in results]
                if min(loads) < 0:
                    print(f"{label}: not drawn within 100 s")
                    continue
                print(f"{label}: load to drawn median {statistics.median(loads):.0f} ms "
                      f"(min {min(loads):.0f}, max {max(loads):.0f}, {args.runs} runs); "
                      f"longest main-thread task {max(r[1] for r in results):.0f} ms")
        finally:
            if driver is not None:
                driver.quit()
            daemon.terminate()
            daemon.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
