"""End-to-end test of the Opticon dashboard in headless Chromium, run by
tests/it/dashboard.rs against a real collector, API and agent: log in as
a tenant user, see the fleet and the agent's host, open the host view
(hostname, graphs with points, storage table), set a watcher from the
page and see the host turn WARN, check that a user of another tenant
sees none of it, that an expired session and an unreachable API are
explained. Prints one JSON line of figures; exits non-zero on failure."""

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from cdp import Browser  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--hostname", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--other-user", required=True)
    p.add_argument("--other-password", required=True)
    p.add_argument("--fleet", type=int, default=0, help="hosts expected at least")
    p.add_argument("--api-pid", type=int, required=True)
    p.add_argument("--shots", required=True)
    a = p.parse_args()
    b = Browser(shots=a.shots)
    figures = {}
    try:
        def login(user, password):
            b.wait("!!document.querySelector('#login')", "the login form")
            b.eval(f"""(() => {{
                document.querySelector('#username').value = {json.dumps(user)};
                document.querySelector('#password').value = {json.dumps(password)};
                document.querySelector('#login').requestSubmit(); return true; }})()""")

        # A browser at the API's base URL lands on the dashboard.
        b.goto(a.url + "/")
        b.wait("location.pathname === '/ui/'", "the redirect to /ui/")
        login(a.user, "wrong")
        b.wait("document.querySelector('#login .error').textContent.includes('Wrong user name or password')", "a refused login explained")
        login(a.user, a.password)
        row = f"document.querySelector('.frow.host[data-host=\"{a.host}\"]')"
        b.wait("document.querySelectorAll('.frow.host').length > 0", "the fleet")
        hosts = b.eval("parseInt(document.querySelector('#counts span').textContent)")
        assert hosts >= max(1, a.fleet), f"{hosts} hosts listed, wanted {a.fleet}"
        figures["fleet_render_ms"] = b.eval("window.__opticonFleetRenderMs")
        b.eval("document.querySelector('.frow.head span[data-key=cpu]').click(), true")
        figures["sort_ms"] = b.eval("window.__opticonLastApplyMs")
        b.screenshot("fleet")
        # Problems come first; the search finds the agent's host by name.
        def search(text):
            b.eval(f"(() => {{ const s = document.querySelector('#search'); s.value = {json.dumps(text)}; s.dispatchEvent(new Event('input')); return true; }})()")
        search(a.hostname)
        b.wait(f"!!{row}", "the agent's host found by the search")
        figures["filter_ms"] = b.eval("window.__opticonLastApplyMs")
        name = b.eval(f"{row}.querySelector('.name').textContent")
        status = b.eval(f"{row}.querySelector('.status').textContent")
        assert name == a.hostname, (name, a.hostname)
        assert status in ("OK", "WARN", "ALERT", "CRIT", "STALE"), status

        # The host view: hostname, graphs with points, the storage table.
        b.eval(f"{row}.click(), true")
        b.wait(f"(document.querySelector('main h1') || {{}}).textContent?.startsWith({json.dumps(a.hostname)})", "the host view")
        b.wait("[...document.querySelectorAll('#graphs path.line')].some(p => +p.dataset.points > 0)", "a graph with points")
        b.wait("!!document.querySelector('#table-df tbody tr')", "the storage table")
        figures["host_render_ms"] = b.eval("window.__opticonHostRenderMs")
        figures["graph_render_ms"] = b.eval("window.__opticonGraphRenderMs")
        b.screenshot("host")
        # A week of graphs.
        b.eval("[...document.querySelectorAll('.tabs button')].find(x => x.textContent === 'week').click(), true")
        b.wait("location.hash.includes('span=604800') && !!document.querySelector('#graphs svg')", "a week of graphs")
        figures["week_graph_render_ms"] = b.eval("window.__opticonGraphRenderMs")

        # A watcher set from the page turns the host WARN within a cycle.
        b.eval("""(() => { const f = document.querySelector('#watchers form');
            f.querySelector('[name=meter]').value = 'pcpu'; f.querySelector('[name=level]').value = 'warning';
            f.querySelector('[name=cmp]').value = 'gt'; f.querySelector('[name=val]').value = '-1';
            f.querySelector('[name=weight]').value = '10'; f.requestSubmit(); return true; })()""")
        b.wait("[...document.querySelectorAll('#watchers td')].some(td => td.textContent === 'host')", "the host's watcher listed")
        fleet = f"#/t/{a.tenant}"
        deadline = time.time() + 60
        while True:
            b.eval(f"location.hash = '#/'; location.hash = {json.dumps(fleet)}; true")
            time.sleep(1.5)
            search(a.hostname)
            st = b.eval(f"(() => {{ const r = {row}; return r && r.querySelector('.status').textContent; }})()")
            if st == "WARN":
                break
            if time.time() > deadline:
                raise AssertionError(f"host never turned WARN (last {st})")
        b.screenshot("warn")

        # Another tenant's user sees none of it.
        b.eval("document.querySelector('#logout').click(), true")
        login(a.other_user, a.other_password)
        b.wait("!!document.querySelector('#counts span')", "the other tenant's fleet")
        assert not b.eval(f"!!{row}"), "another tenant's user sees the host"
        b.eval(f"location.hash = '#/t/{a.tenant}/h/{a.host}'; true")
        b.wait("document.querySelector('#banner').textContent.includes('403')", "a 403 explained")

        # An expired session sends the user to the login, saying why.
        b.eval("sessionStorage.setItem('opticon.token', 'ffffffff-ffff-4fff-8fff-ffffffffffff'); location.reload(); true")
        b.wait("(document.querySelector('#login .error') || {}).textContent?.includes('expired')", "an expired session explained")
        login(a.user, a.password)
        b.wait("document.querySelectorAll('.frow.host').length > 0", "the fleet again")

        # The API goes away: the page says so at its next request.
        os.kill(a.api_pid, signal.SIGKILL)
        time.sleep(0.5)
        b.eval(f"location.hash = '#/t/{a.tenant}/watchers'; true")
        b.wait("document.querySelector('#banner').textContent.includes('Cannot reach the Opticon API')", "an unreachable API explained")
        b.screenshot("unreachable")
        bad = [e for e in b.errors() if "Content Security Policy" in e or "Refused to" in e]
        assert not bad, f"CSP violations: {bad}"
        figures["assets_ok"] = True
        print(json.dumps(figures))
    finally:
        b.close()


if __name__ == "__main__":
    main()
