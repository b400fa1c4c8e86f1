"""The dashboard's Keystone login in headless Chromium (run by
tests/it/keystone.rs against the fake Keystone): the login page offers
OpenStack when /auth/methods lists it, logs in through the API and sends
the token as X-Auth-Token; the tenant's fleet appears."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from cdp import Browser  # noqa: E402

url, tenant, user, password = sys.argv[1:5]
b = Browser(shots=os.environ.get("SHOTS"))
try:
    b.goto(url + "/ui/")
    b.wait("!document.querySelector('#method-row').hidden", "the Keystone choice on the login page")
    b.eval(f"""(() => {{
        const m = document.querySelector('#method'); m.value = 'openstack'; m.dispatchEvent(new Event('change'));
        document.querySelector('#username').value = {json.dumps(user)};
        document.querySelector('#password').value = {json.dumps(password)};
        document.querySelector('#project').value = {json.dumps(tenant)};
        document.querySelector('#login').requestSubmit(); return true; }})()""")
    b.wait(f"location.hash === '#/t/{tenant}' && !!document.querySelector('#counts span')", "the tenant's fleet")
    assert b.eval("sessionStorage.getItem('opticon.header')") == "X-Auth-Token"
    b.screenshot("keystone-fleet")
    print("ok")
finally:
    b.close()
