# ruff: noqa: F811 - pytest fixtures imported by name
"""The viewer page in a real browser (Debian's Chromium through Playwright's Python API): served
by ``python -m sd_sweep view``'s server and exported to a folder opened from ``file://``."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from sd_sweep.core.store import LOG, STATE
from sd_sweep.viewer.export import export_run
from sd_sweep.viewer.server import serve_in_thread
from tests.browser import CHROMIUM, FLAGS
from tests.viewer_runs import cell_at, make_run
from tests.webui_stub.fixtures import tiny_cache, webui, webui_session  # noqa: F401

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium; .ci/run installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (requirements/common.txt)"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def open_page(browser) -> Iterator:
    """A page in a fresh context, closed on exit; the script errors it met fail the test."""
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser):
    with open_page(browser) as page:
        yield page


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, dict]:
    run_dir = tmp_path / "runs" / "look"
    return run_dir, make_run(run_dir)


def col_headers(page) -> list[str]:
    return page.locator("#sv-grid thead th[data-value]").all_inner_texts()


def row_headers(page) -> list[str]:
    return page.locator("#sv-grid tbody th").all_inner_texts()


def check_viewer(page, plan: dict, *, served: bool) -> None:
    page.wait_for_selector("#sv-grid .sv-cell")
    assert col_headers(page) == ["CFG scale: 3", "CFG scale: 4", "CFG scale: 5"]
    assert row_headers(page) == ["Prompt S/R: cat", "Prompt S/R: dog"]
    assert page.inner_text("#sv-page-title") == "Sampler: Euler"
    page.wait_for_function("[...document.querySelectorAll('#sv-grid img')].every(i => i.complete)")

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    # pivot: CFG scale to the rows, so Prompt S/R takes the columns
    page.select_option("select.sv-role-select[data-dim=cfg_scale]", "y")
    assert row_headers(page) == ["CFG scale: 3", "CFG scale: 4", "CFG scale: 5"]
    assert col_headers(page) == ["Prompt S/R: cat", "Prompt S/R: dog"]
    # the sampler as the columns instead: prompt goes to the page selector
    page.select_option("select.sv-role-select[data-dim=sampler_name]", "x")
    assert col_headers(page) == ["Sampler: Euler", "Sampler: Euler a"]
    assert page.inner_text("#sv-page-title") == "Prompt S/R: cat"
    page.select_option("select.sv-role-select[data-dim=prompt_sr]", "x")
    # hide a value
    page.uncheck("input[data-dim=cfg_scale][data-value='1']")
    assert row_headers(page) == ["CFG scale: 3", "CFG scale: 5"]
    images = [u for u in requests if "/thumbs/" not in u and not u.startswith("data:")]
    assert images == [], f"the layout changes asked the network for {images}"

    # open a cell: its infotext; arrow keys move to the neighbours in the shown grid
    first = cell_at(plan, cfg_scale=0, prompt_sr=0, sampler_name=0)
    page.click(f".sv-cell[data-id='{first['id']}']")
    page.wait_for_selector("#sv-lightbox:not([hidden])")
    assert "CFG scale: 3.0" in page.inner_text("#sv-infotext")
    assert page.inner_text("#sv-infotext").startswith("a cat")
    image = page.get_attribute("#sv-lb-img", "src")
    assert image.endswith(f"images/{first['id']}.png")
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#sv-infotext").startswith("a dog")
    page.keyboard.press("ArrowDown")
    text = page.inner_text("#sv-infotext")
    assert text.startswith("a dog")
    assert "CFG scale: 5.0" in text  # the hidden 4 is skipped
    page.keyboard.press("Escape")
    assert page.is_hidden("#sv-lightbox")

    # placeholders: the Euler a page holds a failed and a pending cell
    page.select_option("select[data-page=sampler_name]", "1")
    failed = cell_at(plan, cfg_scale=0, prompt_sr=0, sampler_name=1)
    pending = cell_at(plan, cfg_scale=2, prompt_sr=1, sampler_name=1)
    assert "failed: RuntimeError: out of memory" in page.inner_text(f".sv-cell[data-id='{failed['id']}']")
    assert page.inner_text(f".sv-cell[data-id='{pending['id']}']") == "pending"
    assert page.locator(f".sv-cell[data-id='{pending['id']}'] img").count() == 0
    page.click(f".sv-cell[data-id='{pending['id']}']")
    assert page.inner_text("#sv-infotext") == "Not generated yet."
    page.keyboard.press("Escape")
    assert page.is_visible("#sv-sheets") is served


def test_the_served_viewer_pivots_hides_opens_and_navigates(page, run, tmp_path: Path):
    run_dir, plan = run
    server, url = serve_in_thread(run_dir)
    try:
        page.goto(url)
        check_viewer(page, plan, served=True)
        page.screenshot(path=str(tmp_path / "viewer.png"))
        assert (tmp_path / "viewer.png").stat().st_size > 1000
    finally:
        server.shutdown()
        server.server_close()


def test_the_exported_folder_works_from_disk_without_a_server(page, run, tmp_path: Path):
    run_dir, plan = run
    index = export_run(run_dir, tmp_path / "export")
    shutil.rmtree(run_dir)  # everything it shows is in the export
    page.goto(index.as_uri())
    check_viewer(page, plan, served=False)


def test_a_running_sweep_fills_in_as_cells_finish(page, run):
    run_dir, plan = run
    last = cell_at(plan, cfg_scale=2, prompt_sr=1, sampler_name=0)
    lines = (run_dir / LOG).read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["id"] != last["id"]]
    (run_dir / LOG).write_text("".join(kept))
    state = json.loads((run_dir / STATE).read_text())
    (run_dir / STATE).write_text(json.dumps({**state, "state": "running"}))
    server, url = serve_in_thread(run_dir)
    try:
        page.goto(url + "&poll=150")
        cell = f".sv-cell[data-id='{last['id']}']"
        page.wait_for_selector(cell)
        assert page.inner_text(cell) == "pending"
        (run_dir / LOG).write_text("".join(lines))
        (run_dir / STATE).write_text(json.dumps({**state, "state": "finished"}))
        page.wait_for_selector(f"{cell} img", timeout=30000)
        assert "finished" in page.inner_text("#sv-status")
    finally:
        server.shutdown()
        server.server_close()


def test_the_runs_page_on_the_webui_app_opens_a_run_and_sends_its_infotext_to_the_host(page, run):
    from tests.api_harness import make_app
    from tests.fakes import FakeBackend
    from tests.live_server import LiveServer

    run_dir, plan = run
    app, manager, _ = make_app(run_dir.parent, FakeBackend())
    server = LiveServer(app).start()
    sent: list[list[str]] = []
    try:
        # a stand-in for the WebUI page: same origin, the tab's iframe and its send function
        host = f"{server.url}/sweeps-host"
        frame_html = (
            "<script>window.sdSweepSendInfotext = (text, tab) => { window.sent.push([text, tab]); return true; };"
            "window.sent = [];</script>"
            '<iframe id="f" src="/sweep/v1/viewer/runs.html" style="width:1050px;height:700px"></iframe>'
        )
        page.route(host, lambda route: route.fulfill(status=200, content_type="text/html", body=frame_html))
        page.goto(host)
        frame = page.frame_locator("#f")
        card = frame.locator("article[data-run=look]")
        card.wait_for()
        assert "10/12 done, 1 failed, 1 pending" in card.inner_text()
        assert "CFG scale (3)" in card.inner_text()
        assert card.locator("[data-action=resume]").count() == 0  # a Script run: the note says how
        card.locator("[data-action=open]").click()
        first = cell_at(plan, cfg_scale=0, prompt_sr=0, sampler_name=0)
        frame.locator(f".sv-cell[data-id='{first['id']}']").click()
        frame.locator("#sv-txt2img").click()
        sent = page.evaluate("window.sent")
        assert sent == [[first_infotext(run_dir, first["id"]), "txt2img"]]
        frame.locator("#sv-close").click()
        frame.locator("#sv-back").click()
        frame.locator("article[data-run=look]").wait_for()
        page.once("dialog", lambda dialog: dialog.accept())
        frame.locator("article[data-run=look] [data-action=delete]").click()
        frame.locator("text=No runs yet.").wait_for()
        assert not run_dir.exists()
    finally:
        manager.close()
        server.stop()


def first_infotext(run_dir: Path, cell_id: str) -> str:
    from sd_sweep.core.store import RunStore

    return RunStore.open(run_dir).cells[cell_id]["infotext"]


XSS = "<img src=x onerror=alert(1)>"


def test_prompts_and_labels_are_shown_as_text_never_as_markup(page, tmp_path: Path):
    """A run whose name, prompt and axis labels hold markup: the runs list, the grid's headers,
    the value boxes and the lightbox show it as text; no element is made of it."""
    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.spec import spec_from_dict
    from tests.api_harness import make_app
    from tests.fakes import FakeBackend
    from tests.live_server import LiveServer

    runs = tmp_path / "runs"
    doc = {
        "name": "xss",
        "base": {"prompt": f"a cat {XSS}", "steps": 1, "width": 16, "height": 16, "seed": 1},
        "axes": [
            {"param": "prompt_sr", "values": [XSS, f"dog {XSS}"]},
            {"param": "cfg_scale", "values": [3, 4]},
        ],
        "layout": {"x": "prompt_sr", "y": "cfg_scale"},
    }
    run_sweep(spec_from_dict(doc), FakeBackend(), runs / "xss", draw_grids=False)
    # a spec's name cannot hold markup, but run.json is a file anyone may edit
    state = json.loads((runs / "xss" / STATE).read_text())
    (runs / "xss" / STATE).write_text(json.dumps({**state, "name": f"run {XSS}"}))
    app, manager, _ = make_app(runs, FakeBackend())
    server = LiveServer(app).start()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    foreign = (
        "[...document.querySelectorAll('img')]"
        ".filter(i => !/\\/(thumbs|files)\\//.test(i.src) && i.id !== 'sv-lb-img').length"
    )
    try:
        page.goto(f"{server.url}/sweep/v1/viewer/runs.html")
        card = page.locator("article[data-run=xss]")
        card.wait_for()
        assert XSS in card.locator(".sv-run-name").inner_text()
        assert page.evaluate(foreign) == 0
        card.locator("[data-action=open]").click()
        page.wait_for_selector("#sv-grid .sv-cell img")
        assert col_headers(page) == [f"Prompt S/R: {XSS}", f"Prompt S/R: dog {XSS}"]
        assert XSS in page.inner_text("#sv-title")
        assert XSS in page.inner_text("fieldset[data-dim=prompt_sr]")
        page.locator("#sv-grid .sv-cell").first.click()
        page.wait_for_selector("#sv-lightbox:not([hidden])")
        assert XSS in page.inner_text("#sv-lb-title")
        assert page.inner_text("#sv-infotext").startswith(f"a cat {XSS}")
        page.wait_for_timeout(200)
        assert page.evaluate(foreign) == 0
        assert page.locator("img[src=x]").count() == 0
        assert dialogs == []
    finally:
        manager.close()
        server.stop()


TAB_SPEC = """
name: tab
axes:
  - param: cfg_scale
    values: 5, 9
  - param: prompt_sr
    values: cat, dog
layout: {x: cfg_scale, y: prompt_sr}
"""


@pytest.fixture
def stand_in_page(browser, webui, monkeypatch):
    """A page on the stand-in WebUI (tests/webui_stub: ``launch_page``) with a Sweep script run of the tiny model."""
    import sd_sweep.api as sweep_api
    from tests.webui_stub.fixtures import REPO, make_p, sweep_script

    sweep_script(webui.scripts.scripts_txt2img).run(make_p(False, webui.tmp, steps=2, seed=11), TAB_SPEC)
    monkeypatch.setattr(sweep_api, "_manager", None)
    demo, url = webui.stub.launch_page([str(REPO), webui.stub.FAKE_EXTENSION])
    try:
        with open_page(browser) as page:
            page.context.route(re.compile(r"^(?!http://127\.0\.0\.1[:/])"), lambda route: route.abort())
            page.goto(url)
            yield page
    finally:
        sweep_api.shutdown()
        webui.stub.close_page(demo)


def test_the_sweeps_tab_of_the_stand_in_webui_sends_a_cell_to_txt2img(stand_in_page):
    """Through the page as the WebUI builds it: the Sweeps tab (on_ui_tabs), the viewer in its frame,
    and "Send to txt2img" through the paste button registered with infotext_utils."""
    page = stand_in_page
    page.locator("#tabs").get_by_text("Sweeps", exact=True).first.click()
    frame = page.frame_locator("#sd_sweep_frame")
    frame.locator("article[data-run=tab] [data-action=open]").click()
    frame.locator("#sv-grid .sv-cell img").first.wait_for()
    grid = frame.locator("#sv-grid")
    assert grid.locator("thead th[data-value]").all_inner_texts() == ["CFG scale: 5", "CFG scale: 9"]
    frame.locator("select.sv-role-select[data-dim=cfg_scale]").select_option("y")
    assert grid.locator("tbody th").all_inner_texts() == ["CFG scale: 5", "CFG scale: 9"]
    assert grid.locator("thead th[data-value]").all_inner_texts() == ["Prompt S/R: cat", "Prompt S/R: dog"]
    frame.locator("input[data-dim=prompt_sr][data-value='0']").uncheck()
    assert grid.locator("thead th[data-value]").all_inner_texts() == ["Prompt S/R: dog"]
    grid.locator(".sv-cell").last.click()
    infotext = frame.locator("#sv-infotext").inner_text()
    assert infotext.startswith("a red dog\nNegative prompt: blurry\n")
    for field in ("Steps: 2,", "CFG scale: 9.0,", "Seed: 11,"):
        assert field in infotext
    frame.locator("#sv-txt2img").click()
    page.wait_for_function("() => document.querySelector('#txt2img_prompt textarea').value === 'a red dog'")
    assert page.is_visible("#txt2img_prompt textarea")  # the paste button's JS step switched to the tab
    assert page.input_value("#txt2img_neg_prompt textarea") == "blurry"
    assert page.input_value("#txt2img_steps input[type=number]") == "2"
    assert page.input_value("#txt2img_cfg_scale input[type=number]") == "9"
    assert page.input_value("#txt2img_seed input[type=number]") == "11"
    assert page.input_value("#txt2img_width input[type=number]") == "64"
