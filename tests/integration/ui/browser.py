"""Drives the telos web app in headless Chromium (Playwright for Python,
the Debian /usr/bin/chromium): signs in, filters and pages the inbox,
opens a workflow and jumps to its first divergence, lists workflows, signs
out. Every page is watched for console errors, page errors and
Content-Security-Policy violations (a listener injected by the driver, which
the page's policy does not govern; a deliberate violation at the end shows
the listener works). Screenshots go to OUT_DIR.

Usage: browser.py BASE_URL OUT_DIR   (the analyst key in TELOS_UI_KEY)
Prints one JSON object: {"failures": [...], "console": [...], ...}.
"""

import json
import os
import sys
import tempfile

from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


def main():
    base, out = sys.argv[1].rstrip("/"), sys.argv[2]
    key = os.environ["TELOS_UI_KEY"]
    os.makedirs(out, exist_ok=True)
    failures, console, csp, visited = [], [], [], []
    result = {"failures": failures, "console": console, "csp": csp, "visited": visited}

    def check(ok, what):
        if not ok:
            failures.append(what)

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        ctx.set_default_timeout(90_000)
        ctx.add_init_script(WATCH)
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))

        def settle(name):
            """Records the page's CSP violations and a screenshot."""
            page.wait_for_load_state("load")
            visited.append(page.url)
            csp.extend(f"{page.url}: {v}" for v in page.evaluate("window.__csp || []"))
            page.screenshot(path=os.path.join(out, f"{name}.png"), full_page=True)

        # Sign in.
        page.goto(base + "/ui/inbox")
        check(page.url.endswith("/ui/login"), f"an unknown visitor lands on the login form, not {page.url}")
        settle("01-login")
        page.fill("#api_key", key)
        page.click("button[type=submit]")
        check(page.url.endswith("/ui/inbox"), f"signed in to the inbox, not {page.url}")
        cookies = {c["name"]: c for c in ctx.cookies()}
        session = cookies.get("telos_session")
        check(session is not None, "a session cookie")
        if session:
            check(session["httpOnly"], "the session cookie is HttpOnly")
            check(session["sameSite"] == "Strict", f"SameSite=Strict, not {session['sameSite']}")
            check(session["expires"] > 0, "the session cookie expires")
        header_bg = page.evaluate("getComputedStyle(document.querySelector('header.top')).backgroundColor")
        check(header_bg == "rgb(30, 58, 138)", f"the stylesheet applies under the policy (header {header_bg})")
        all_rows = page.locator("table#inbox tbody tr").count()
        result["inbox_rows"] = all_rows
        check(page.locator("#counts li").count() > 0, "counts by reason")
        settle("02-inbox")

        # Filters, through the form; kept in the URL.
        page.select_option("select[name=reason]", "tool_outside_intent")
        page.fill("input[name=subject]", "alice")
        page.click("#filters button[type=submit]")
        check("reason=tool_outside_intent" in page.url and "subject=alice" in page.url, f"filters in the URL: {page.url}")
        rows = page.locator("table#inbox tbody tr")
        result["filtered_rows"] = rows.count()
        check(rows.count() >= 1, "the filter keeps rows")
        for i in range(rows.count()):
            text = rows.nth(i).inner_text()
            check("tool_outside_intent" in text and "alice" in text, f"row {i} matches the filter: {text}")
        check(page.locator("select[name=reason]").input_value() == "tool_outside_intent", "the form shows the filter")
        settle("03-inbox-filtered")

        # Pagination by cursor: every row once across the pages.
        page.goto(base + "/ui/inbox?limit=3")
        seen, pages = [], 0
        while True:
            pages += 1
            links = page.locator("table#inbox tbody tr td:nth-child(2) a")
            seen.extend(links.nth(i).get_attribute("href") for i in range(links.count()))
            if pages == 2:
                settle("04-inbox-page2")
            nxt = page.locator("#next")
            if nxt.count() == 0 or pages > 20:
                break
            nxt.click()
            check("cursor=" in page.url and "limit=3" in page.url, f"the cursor and the page size in the URL: {page.url}")
        result["pages"] = pages
        check(len(seen) == all_rows and len(set(seen)) == len(seen), f"{len(seen)} rows over {pages} pages, {all_rows} in all, none twice")

        # A workflow: the timeline and the jump to the first divergence.
        page.goto(base + "/ui/inbox?subject=alice")
        page.locator("table#inbox tbody tr td:nth-child(2) a").first.click()
        check("/ui/workflows/" in page.url and page.url.endswith("#step-5"), f"the workflow page at the row's step: {page.url}")
        check(page.locator("#chain").inner_text() == "verified", "the chain verifies")
        check(page.locator("#timeline li.step").count() >= 1, "a timeline")
        check(page.locator("svg").count() == 1, "the delegation graph")
        page.click("#first-divergence")
        check(page.url.endswith("#step-3"), f"jumped to the first divergence: {page.url}")
        check(page.locator("#step-3.divergent").is_visible(), "the first divergent step is shown")
        result["evidence_open"] = page.locator("#step-3 details[open]").count()
        settle("05-workflow")

        page.goto(base + "/ui/workflows")
        check(page.locator("table#workflows tbody tr").count() >= 1, "workflows listed")
        settle("06-workflows")

        # Sign out: back to the login form, and the inbox needs a sign-in.
        page.goto(base + "/ui/inbox")
        page.click("text=Sign out")
        check(page.url.endswith("/ui/login"), f"signed out to the login form, not {page.url}")
        page.goto(base + "/ui/inbox")
        check(page.url.endswith("/ui/login"), "the inbox needs a new sign-in")
        settle("07-signed-out")

        check(not console, f"console errors: {console}")
        check(not csp, f"CSP violations: {csp}")
        # The watchers see a violation when there is one.
        errors_before = len(console)
        page.evaluate("document.body.setAttribute('style', 'color: red')")
        page.wait_for_timeout(200)
        result["control_violations"] = len(page.evaluate("window.__csp"))
        result["control_console"] = len(console) - errors_before
        del console[errors_before:]
        ctx.close()

    print(json.dumps(result))


if __name__ == "__main__":
    main()
