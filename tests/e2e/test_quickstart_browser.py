"""The whole loop in a real browser: JupyterLab + headless Debian chromium via Playwright.

Opens the quickstart, runs every cell, then checks what only a browser can show:
the review widget renders and answers the keyboard (fail, category 2, next) with an
event in the label store; trace text holding <script>, <img onerror> and <style>
stays inert; clicking a point of the cluster map reaches Python. Screenshots go to
``artifacts/screenshots/``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import polars as pl
import pytest

from tests.e2e.lab import CHROMIUM_ARGS, chromium_path, jupyter_lab

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
QUICKSTART = "notebooks/00_quickstart.ipynb"
WIDGET_CELL = 7  # the quickstart cell that opens the review widget

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason="Debian chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    """Run the quickstart in JupyterLab once; yield the page, the store path and timings."""
    sync_api = pytest.importorskip("playwright.sync_api")
    work = tmp_path_factory.mktemp("e2e")
    store_path = work / "labels.sqlite"
    SHOTS.mkdir(parents=True, exist_ok=True)
    env = {"WORKBENCH_QUICKSTART_STORE": str(store_path)}
    with jupyter_lab(ROOT, env, work / "lab.log") as lab, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        started = time.monotonic()
        page.goto(lab.notebook_url(QUICKSTART))
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands", timeout=60_000)
        # wait for the kernel session to be ready, then run everything (retry once if nothing starts)
        page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                       return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel
                              && w.sessionContext.session.kernel.status === 'idle'; }""",
            timeout=120_000,
        )
        toolbar_style = _toolbar_style(page)
        page.click(".jp-Notebook .jp-Cell >> nth=1")  # make the notebook the current widget
        for _attempt in range(3):
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }")
            try:
                page.wait_for_function(
                    "() => document.querySelectorAll('.jp-OutputArea-output').length > 0", timeout=30_000
                )
                break
            except sync_api.TimeoutError:
                page.click(".jp-Notebook .jp-Cell >> nth=1")
        try:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-OutputArea-output')].some(e => e.innerText.includes('QUICKSTART DONE'))",
                timeout=240_000,
            )
        except Exception:
            page.screenshot(path=str(SHOTS / "failed_run.png"), full_page=True)
            errors = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText.slice(0, 400))")
            raise AssertionError(f"the quickstart did not finish in the browser; outputs: {errors}") from None
        seconds = time.monotonic() - started
        try:
            yield {"page": page, "store": store_path, "dialogs": dialogs, "seconds": seconds,
                   "toolbar_style": toolbar_style, "lab": lab}
        finally:
            browser.close()


def _toolbar_style(page) -> dict:
    return page.evaluate(
        """() => { const el = document.querySelector('.jp-NotebookPanel-toolbar') || document.body;
                   const s = getComputedStyle(el);
                   return {display: s.display, visibility: s.visibility, color: s.color,
                           background: s.backgroundColor, bodyDisplay: getComputedStyle(document.body).display}; }"""
    )


def _events(store_path: Path, reviewer: str) -> pl.DataFrame:
    from workbench.review.store import LabelStore

    with LabelStore(store_path) as store:
        return store.events(reviewer=reviewer)


def test_quickstart_runs_and_widget_renders(browser_run):
    page = browser_run["page"]
    widget = page.locator(".wbr").first
    widget.wait_for(state="visible", timeout=60_000)
    widget.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const w = document.querySelector('.wbr'); return w && w.innerText.includes('1 of 30'); }",
        timeout=60_000,
    )
    assert "Conversation" in widget.inner_text() or "CONVERSATION" in widget.inner_text()
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(SHOTS / "review_widget.png"))
    print(f"quickstart ran in the browser in {browser_run['seconds']:.1f} s")


def test_keys_fail_category_next_reach_the_store(browser_run):
    page, store = browser_run["page"], browser_run["store"]
    widget = page.locator(".wbr").first
    before = _events(store, "you").height
    widget.locator(".wbr-header").click()
    widget.focus()
    for key in ("2", "f", "j"):
        page.keyboard.press(key)
        page.wait_for_timeout(400)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = _events(store, "you")
        if events.height > before:
            break
        time.sleep(0.3)
    assert events.height == before + 1
    event = events.row(-1, named=True)
    assert event["verdict"] == "fail"
    categories = _category_names(store)
    assert event["categories"] == [categories[1]]
    page.wait_for_function("() => document.querySelector('.wbr').innerText.includes('3 of 30')", timeout=20_000)
    widget.screenshot(path=str(SHOTS / "review_widget_after_keys.png"))


def _category_names(store_path: Path) -> list[str]:
    from workbench.review.store import LabelStore
    from workbench.review.taxonomy import Taxonomy

    with LabelStore(store_path) as store:
        return Taxonomy(store).names()


def test_trace_html_stays_inert(browser_run):
    page = browser_run["page"]
    assert browser_run["dialogs"] == []
    assert page.evaluate("() => window.__xss") is None
    assert _toolbar_style(page) == browser_run["toolbar_style"]
    pasted = page.locator(".wbr").nth(1)
    pasted.scroll_into_view_if_needed()
    text = pasted.inner_text()
    assert "<script>" in text or "<img" in text or "<style>" in text  # shown as text
    injected = page.evaluate(
        """() => [...document.querySelectorAll('.wbr script, .wbr style, .wbr img[onerror], .wbr iframe, .wbr svg[onload]')]
                  .filter(n => !n.closest('.wbr-own')).length"""
    )
    assert injected == 0
    pasted.screenshot(path=str(SHOTS / "review_widget_pasted_html.png"))


def test_cluster_map_click_reaches_python(browser_run):
    page = browser_run["page"]
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    plot.wait_for(state="visible", timeout=60_000)
    plot.screenshot(path=str(SHOTS / "cluster_map.png"))
    point = page.evaluate(
        """() => { const gd = document.querySelector('.js-plotly-plot');
                   const trace = gd._fullData.find(t => t.x && t.x.length && t.visible === true);
                   const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                   const box = gd.getBoundingClientRect();
                   return {x: box.left + xa._offset + xa.d2p(trace.x[0]), y: box.top + ya._offset + ya.d2p(trace.y[0]),
                           name: trace.name}; }"""
    )
    page.mouse.move(point["x"], point["y"])
    page.wait_for_timeout(300)
    page.mouse.click(point["x"], point["y"])
    status = page.locator(".wb-map-selection").first
    page.wait_for_function(
        "() => { const el = document.querySelector('.wb-map-selection'); return el && /[1-9][0-9]* trace/.test(el.innerText); }",
        timeout=20_000,
    )
    assert "trace" in status.inner_text()
    page.locator(".wb-map-selection").first.screenshot(path=str(SHOTS / "cluster_map_selection.png"))


def test_comparison_renders(browser_run):
    page = browser_run["page"]
    table = page.locator(".wb-report:has-text('Cohort comparison')").first
    table.scroll_into_view_if_needed()
    assert "improved" in table.inner_text() and "regressed" in table.inner_text()
    table.screenshot(path=str(SHOTS / "comparison.png"))
    forest = page.locator(".js-plotly-plot").nth(1)
    forest.scroll_into_view_if_needed()
    forest.screenshot(path=str(SHOTS / "forest_plot.png"))



def test_typed_note_survives_a_kernel_restart(browser_run):
    """S9 through the real page: type, wait past the debounce, restart the kernel, run again: the draft is back."""
    page = browser_run["page"]
    widget = page.locator(".wbr").first
    widget.scroll_into_view_if_needed()
    note = widget.locator("textarea.wbr-note")
    note.click()
    text = "refund asked, no policy in the prompt; typed, then the kernel died"
    note.fill("")
    note.type(text)
    page.wait_for_timeout(3_000)  # the widget sends after 0.4 s of quiet; the session writes within 2 s
    typed_on = re.search(r"[0-9a-f]{32}", widget.locator(".wbr-header").inner_text()).group(0)
    kernel = "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
    page.evaluate(f"() => {kernel}.restart()")
    page.wait_for_function(f"() => {kernel}.status === 'idle'", timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    # run the cells up to the one that shows the widget (the quickstart's asserts expect a fresh store)
    page.click(f".jp-Notebook .jp-Cell >> nth={WIDGET_CELL + 1}")
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-above'); return true; }")
    widget = page.locator(".wbr").first
    widget.wait_for(state="visible", timeout=120_000)
    widget.scroll_into_view_if_needed()
    widget.locator(".wbr-header").click()
    for _ in range(10):  # the new session resumes at the first unlabelled trace: go to the one typed on
        if typed_on in widget.locator(".wbr-header").inner_text():
            break
        page.keyboard.press("j")
        page.wait_for_timeout(300)
    widget.scroll_into_view_if_needed()
    page.wait_for_function("() => document.querySelector('textarea.wbr-note').value.length > 0", timeout=30_000)
    assert widget.locator("textarea.wbr-note").input_value() == text
    assert "draft restored" in widget.inner_text()
    widget.screenshot(path=str(SHOTS / "review_widget_draft_restored.png"))
