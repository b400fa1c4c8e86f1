"""Dashboard benchmark (scripts/bench-dashboard): a tenant of HOSTS hosts
(its overview as the collector publishes it) and one host with a week of
records, served by a real opticon-api and measured in headless Chromium
with the Performance API inside the page: the fleet's first render since
navigation, a re-sort and a filter, and a week of graphs after the data
arrived. Prints the figures (medians of the repeated steps)."""

import json
import os
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from cdp import Browser  # noqa: E402

BIN, WORK, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
HOSTS = int(os.environ.get("HOSTS", "10000"))
TENANT = "0296d893-8187-4f44-a31b-bf3b4c19fc10"
HOST = "11111111-2222-3333-4444-555555555555"
ADMIN = "a9f3c2d1-0000-4000-8000-0123456789ab"
DB = os.path.join(WORK, "db")


def run(*args):
    subprocess.run([os.path.join(BIN, "opticon-db"), *args], check=True, stdout=subprocess.DEVNULL)


run("--init", "-p", DB, "tenant-create", "--tenant", TENANT)
now = int(time.time()) // 60 * 60
week = os.path.join(WORK, "week.json")
with open(week, "w") as f:
    for i in range(7 * 1440, 0, -1):
        t = now - i * 60
        m = {"hostname": "db-01", "status": "OK", "pcpu": 20 + (i % 60), "io/pwait": i % 7, "loadavg": [1.5, 1.2, 1.0],
             "mem/free": 1000000 + i, "mem/total": 4096000, "io/rdops": i % 300, "io/wrops": i % 200,
             "net/in_kbs": i % 900, "net/out_kbs": i % 500, "link/rtt": 0.5, "link/loss": 0}
        f.write(json.dumps({"time": t, "meters": m}) + "\n")
run("-p", DB, "-t", TENANT, "-H", HOST, "host-import", week)
statuses = ["OK"] * 80 + ["WARN"] * 12 + ["ALERT"] * 6 + ["CRIT"] + ["STALE"]
with open(os.path.join(DB, TENANT, "tenant.overview"), "w") as f:
    f.write('{"overview":{')
    for i in range(HOSTS):
        h = HOST if i == 0 else str(uuid.UUID(int=i + 1))
        e = {"hostname": f"web-{i:05d}.example.net", "status": statuses[i % len(statuses)], "link/ip": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
             "pcpu": (i * 37) % 100, "loadavg": (i % 40) / 10, "io/rdops": i % 500, "io/wrops": i % 300, "net/in_kbs": i % 9000,
             "net/out_kbs": i % 7000, "mem/free": 800000 + i, "link/rtt": (i % 50) / 10, "link/loss": 0}
        if e["status"] != "OK":
            e["problems"] = ["pcpu"]
        f.write(("," if i else "") + "\n" + json.dumps(h) + ":" + json.dumps(e))
    f.write("\n}}\n")
if os.geteuid() == 0:
    subprocess.run(["chown", "-R", "nobody", DB], check=True)
with open(os.path.join(WORK, "api.conf"), "w") as f:
    f.write(f'network {{ address 127.0.0.1 port {PORT} }}\ndatabase {{ path "{DB}" }}\nauth {{ admin_token "{ADMIN}" }}\n')
api = subprocess.Popen([os.path.join(BIN, "opticon-api"), "-f", "-c", os.path.join(WORK, "api.conf"),
                        "-l", os.path.join(WORK, "api.log"), "-p", os.path.join(WORK, "api.pid")])
url = f"http://127.0.0.1:{PORT}"
b = Browser()
try:
    time.sleep(1)
    b.goto(url + "/ui/")
    b.wait("!!document.querySelector('#token')", "the login form")
    b.eval(f"sessionStorage.setItem('opticon.token', '{ADMIN}'), true")
    first = []
    for _ in range(5):
        b.eval(f"history.replaceState(null, '', '/ui/#/t/{TENANT}'), true")
        b.call("Page.reload")
        b.wait("window.__opticonFleetReadyAt !== undefined && document.querySelectorAll('.frow.host').length > 0", "the fleet")
        n = b.eval("parseInt(document.querySelector('#counts span').textContent)")
        assert n == HOSTS, n
        first.append(b.eval("window.__opticonFleetReadyAt"))
    sorts, filters = [], []
    for key in ["cpu", "hostname", "status", "ram", "net", "load", "cpu", "ip"] * 2:
        b.eval(f"document.querySelector('.frow.head span[data-key={key}]').click(), true")
        sorts.append(b.eval("window.__opticonLastApplyMs"))
    for q in ["web-01", "10.0.3", "pcpu", "web-0999", "", "example", "web-1", ""] * 2:
        b.eval(f"(() => {{ const s = document.querySelector('#search'); s.value = '{q}'; s.dispatchEvent(new Event('input')); return true; }})()")
        filters.append(b.eval("window.__opticonLastApplyMs"))
    graphs = []
    for _ in range(5):
        b.eval(f"window.__opticonGraphRenderMs = undefined; location.hash = '#/t/{TENANT}/h/{HOST}?span=604800&r=' + Math.random(); true")
        b.wait("window.__opticonGraphRenderMs !== undefined && [...document.querySelectorAll('#graphs path.line')].some(p => +p.dataset.points > 200)", "a week of graphs")
        graphs.append(b.eval("window.__opticonGraphRenderMs"))
    med = lambda xs: round(statistics.median(xs), 1)
    print(f"dashboard, {HOSTS} hosts, headless Chromium (Performance API in the page):")
    print(f"  fleet first render since navigation: median {med(first)} ms (of {len(first)}: {', '.join(str(round(x)) for x in first)})")
    print(f"  re-sort: median {med(sorts)} ms, max {round(max(sorts), 1)} ms ({len(sorts)} sorts)")
    print(f"  filter:  median {med(filters)} ms, max {round(max(filters), 1)} ms ({len(filters)} searches)")
    print(f"  host view, a week of graphs after the data arrived: median {med(graphs)} ms")
finally:
    b.close()
    api.kill()
