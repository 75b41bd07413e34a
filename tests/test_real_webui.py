"""Acceptance inside a real WebUI (v1.10.1 or Forge), opt-in: ``SD_SWEEP_WEBUI_DIR`` names its folder.

The WebUI there must have this extension in ``extensions/`` and a checkpoint. The test starts it
with ``--api --nowebui`` on a free loopback port (``SD_SWEEP_WEBUI_ARGS`` adds arguments, e.g.
``--use-cpu all --no-half --skip-torch-cuda-test``; ``SD_SWEEP_WEBUI_PYTHON`` picks its Python,
by default its ``venv``), then drives the Sweep script through ``/sdapi/v1/txt2img`` and the
extension's own ``/sweep/v1`` routes. ``SD_SWEEP_WEBUI_EXACT=1`` adds the exact-image check: each
image of a Script sweep (txt2img, img2img, hires with a latent and a pixel upscaler) against a
plain batch-size-1 generation of its own infotext.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sd_sweep.client import SweepClient
from tests.browser import CHROMIUM, FLAGS

ROOT_ENV = "SD_SWEEP_WEBUI_DIR"
EXACT_ENV = "SD_SWEEP_WEBUI_EXACT"
RUN_TAG = uuid.uuid4().hex[:8]
"""A fresh run name each session: runs are resumable, so a rerun under the same name would generate nothing."""
SPEC = {
    "name": f"acceptance-{RUN_TAG}",
    "base": {"steps": 4, "width": 256, "height": 256, "seed": 7, "batch_size": 2},
    "axes": [{"param": "cfg_scale", "values": "4, 8"}, {"param": "seed", "values": "7, 8"}],
}


def _python(root: Path) -> str:
    configured = os.environ.get("SD_SWEEP_WEBUI_PYTHON")
    if configured:
        return configured
    venv = root / "venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _root() -> Path:
    root = os.environ.get(ROOT_ENV)
    if not root:
        pytest.skip(f"no real WebUI: set {ROOT_ENV} to a WebUI v1.10.1 or Forge folder with this extension installed")
    return Path(root)


@pytest.fixture(scope="module")
def real_webui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_webui(tmp_path_factory, ui=False)


@pytest.fixture(scope="module")
def real_webui_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The WebUI with its page (no ``--nowebui``), for the Sweeps tab in a browser."""
    yield from _start_webui(tmp_path_factory, ui=True)


def _start_webui(tmp_path_factory: pytest.TempPathFactory, *, ui: bool) -> Iterator[str]:
    root = _root()
    port = _free_port()
    # --nowebui binds every interface unless a server name is given: keep it on loopback.
    args = ["launch.py", "--skip-prepare-environment", "--api", *([] if ui else ["--nowebui"])]
    args += ["--server-name", "127.0.0.1", "--port", str(port), *shlex.split(os.environ.get("SD_SWEEP_WEBUI_ARGS", ""))]
    # Its output goes to a file, not a pipe nobody reads while it runs: a full pipe would stall the WebUI.
    log_path = tmp_path_factory.mktemp("real-webui") / "webui.log"
    log = log_path.open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the "Startup time" line must reach the log at once
    process = subprocess.Popen([_python(root), *args], cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while True:
            if process.poll() is not None:
                pytest.fail(f"the WebUI exited: {log_path.read_text(errors='replace')[-3000:]}")
            assert time.monotonic() < deadline, "the WebUI did not start in 15 minutes"
            try:
                urllib.request.urlopen(f"{url}/sdapi/v1/samplers", timeout=5)
                # Forge answers its API about a second before its scripts are set up.
                if "Startup time" in log_path.read_text(errors="replace"):
                    break
                time.sleep(1)
            except OSError:
                time.sleep(2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=900) as response:
        return json.loads(response.read())


def test_script_by_name_over_the_webui_api(real_webui: str):
    from PIL import Image

    body = {
        "prompt": "a lighthouse at dusk",
        **{k: v for k, v in SPEC["base"].items() if k != "batch_size"},
        "batch_size": 2,
        "script_name": "sweep",
        "script_args": [json.dumps({"name": f"acceptance-script-{RUN_TAG}", "axes": SPEC["axes"]})],
    }
    answer = _post(real_webui, "/sdapi/v1/txt2img", body)
    info = json.loads(answer["info"])
    first = info["index_of_first_image"]
    assert first >= 1
    assert len(answer["images"]) == first + 4
    cells = info["infotexts"][first:]
    assert sorted(("CFG scale: 4" in t, "Seed: 7" in t) for t in cells) == [
        (False, False),
        (False, True),
        (True, False),
        (True, True),
    ]
    for encoded in answer["images"][first:]:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
            assert image.size == (256, 256)


def test_sweep_routes_in_the_webui(real_webui: str, tmp_path: Path):
    client = SweepClient(real_webui)
    assert client.has_sweep_api()
    catalog = client.axes()
    assert {p["name"] for p in catalog["params"]} >= {"cfg_scale", "seed", "sampler_name", "checkpoint"}
    spec = {**SPEC, "base": {**SPEC["base"], "prompt": "a lighthouse at dusk"}}
    plan = client.plan(spec)
    assert len(plan["cells"]) == 4
    # Seeds share a batch where the host's batches are measured to leave images unchanged (txt2img in
    # v1.10.1 and in Forge: params.BATCH_EXACTNESS).
    assert len(plan["batches"]) == 2
    job = client.submit(spec)
    finished = client.wait(job["id"], poll=1.0, timeout=900)
    assert finished["state"] == "finished", finished
    assert finished["cells_reused"] == 0, finished
    run_dir = client.download(job["id"], tmp_path / "acceptance")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert sorted(c["state"] for c in manifest["cells"].values()) == ["done"] * 4
    assert list((run_dir / "images").glob("*.png"))


def _script_sweep(url: str, name: str, cfg_values: str) -> dict:
    spec = {"name": name, "axes": [{"param": "cfg_scale", "values": cfg_values}]}
    body = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 5}
    return _post(url, "/sdapi/v1/txt2img", {**body, "script_name": "sweep", "script_args": [json.dumps(spec)]})


def test_growing_a_script_sweep_generates_only_the_new_cells(real_webui: str):
    name = f"acceptance-grow-{RUN_TAG}"
    log = _root() / "outputs" / "sweeps" / name / "cells.jsonl"
    _script_sweep(real_webui, name, "3, 7")
    assert len(log.read_text().splitlines()) == 2
    answer = _script_sweep(real_webui, name, "3, 7, 11")
    assert len(log.read_text().splitlines()) == 3  # one new cell appended, none made again
    info = json.loads(answer["info"])
    assert len(answer["images"]) == info["index_of_first_image"] + 3


def test_the_sweeps_tab_shows_a_run_and_sends_a_cell_to_txt2img(real_webui_page: str, tmp_path: Path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}")
    name = f"acceptance-tab-{RUN_TAG}"
    _script_sweep(real_webui_page, name, "3, 9")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(real_webui_page, timeout=300_000)
        page.wait_for_selector("#tabs", timeout=300_000)
        page.locator("#tabs").get_by_text("Sweeps", exact=True).first.click()  # a button in gradio 3, a tab in 4
        frame = page.wait_for_selector("#sd_sweep_frame", timeout=60_000).content_frame()
        frame.wait_for_selector(f"text={name}", timeout=60_000)
        card = frame.locator(f"text={name}").locator("xpath=ancestor::*[.//a[normalize-space()='Open']][1]")
        card.get_by_text("Open", exact=True).click()
        frame.wait_for_selector(".sv-cell[data-state=done]", timeout=60_000)
        assert frame.locator(".sv-cell[data-state=done]").count() == 2
        frame.locator(".sv-cell[data-state=done]").last.click()
        frame.wait_for_selector("#sv-lightbox:not([hidden])", timeout=10_000)
        assert "CFG scale: 9" in frame.inner_text("#sv-infotext")
        frame.click("#sv-txt2img")
        page.wait_for_function(
            "() => document.querySelector('#txt2img_prompt textarea').value === 'a lighthouse'", timeout=30_000
        )
        assert page.input_value("#txt2img_cfg_scale input[type=number]") == "9"
        page.screenshot(path=str(tmp_path / "sweeps-tab.png"))
        browser.close()


TOLERANCE = 2
"""Levels of 0-255 a sweep image may differ from a plain generation of its infotext (``BATCH_TOLERANCE``)."""
INFOTEXT_FIELDS = {
    "Steps": ("steps", int),
    "Sampler": ("sampler_name", str),
    "Schedule type": ("scheduler", str),
    "CFG scale": ("cfg_scale", float),
    "Seed": ("seed", int),
    "Denoising strength": ("denoising_strength", float),
    "Hires upscale": ("hr_scale", float),
    "Hires steps": ("hr_second_pass_steps", int),
    "Hires upscaler": ("hr_upscaler", str),
    "Hires CFG Scale": ("hr_cfg", float),
}
"""Infotext keys that set what these sweeps vary, and their ``/sdapi/v1`` fields."""
HIRES = {"enable_hr": True, "hr_scale": 2, "hr_second_pass_steps": 1, "hr_additional_modules": ["Use same choices"]}
EXACT_CASES = {
    "txt2img": ("txt2img", {"batch_size": 2}, [{"param": "seed", "values": "3, 4"}]),
    "img2img": ("img2img", {"batch_size": 2, "denoising_strength": 0.6}, [{"param": "seed", "values": "3, 4"}]),
    "hires-latent": (
        "txt2img",
        {**HIRES, "hr_upscaler": "Latent"},
        [{"param": "denoising_strength", "values": "0.4, 0.6"}],
    ),
    "hires-pixel": (
        "txt2img",
        {**HIRES, "hr_upscaler": "Lanczos"},
        [{"param": "denoising_strength", "values": "0.4, 0.6"}],
    ),
}


def _pixels(encoded: str):
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(encoded))) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def _init_image() -> str:
    from PIL import Image

    image = Image.new("RGB", (64, 64))
    image.putdata([((x * 4) % 256, (y * 4) % 256, ((x + y) * 2) % 256) for y in range(64) for x in range(64)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def plain_request(infotext: str) -> dict:
    """The ``/sdapi/v1`` request of a plain generation of an infotext (the fields these sweeps vary)."""
    from sd_sweep.core.infotext import parse_settings_line

    *text, line = infotext.strip().splitlines()
    settings = parse_settings_line(line)
    assert "Sweep batch" not in settings, infotext  # a batch may have changed this image
    joined = "\n".join(text)
    prompt, _, negative = joined.partition("\nNegative prompt: ")
    request = {"prompt": prompt, "negative_prompt": negative, "batch_size": 1, "n_iter": 1}
    for key, (name, kind) in INFOTEXT_FIELDS.items():
        if key in settings:
            request[name] = kind(settings[key])
    width, height = settings["Size"].split("x")
    request.update(width=int(width), height=int(height))
    if "Hires upscale" in settings:
        request.update(enable_hr=True, hr_additional_modules=["Use same choices"])
    return request


@pytest.mark.parametrize("case", list(EXACT_CASES))
def test_each_sweep_image_is_a_plain_generation_of_its_infotext(real_webui: str, case: str):
    if os.environ.get(EXACT_ENV) != "1":
        pytest.skip(f"the exact-image check runs with {EXACT_ENV}=1")
    tab, base, axes = EXACT_CASES[case]
    common = {"prompt": "a lighthouse", "steps": 2, "width": 64, "height": 64, "seed": 3, "sampler_name": "Euler"}
    if tab == "img2img":
        common["init_images"] = [_init_image()]
    spec = {"name": f"exact-{case}-{RUN_TAG}", "axes": axes}
    body = {**common, **base, "script_name": "sweep", "script_args": [json.dumps(spec)]}
    answer = _post(real_webui, f"/sdapi/v1/{tab}", body)
    info = json.loads(answer["info"])
    first = info["index_of_first_image"]
    assert len(answer["images"]) == first + 2
    for encoded, infotext in zip(answer["images"][first:], info["infotexts"][first:]):
        request = {**plain_request(infotext), **({"init_images": common["init_images"]} if tab == "img2img" else {})}
        plain = _post(real_webui, f"/sdapi/v1/{tab}", request)
        difference = int(abs(_pixels(encoded) - _pixels(plain["images"][-1])).max())
        print(f"{case}: {difference} levels from a plain generation")  # the measured numbers (pytest -rP)
        assert difference <= TOLERANCE, f"{case}: {difference} levels from a plain generation of {infotext!r}"
