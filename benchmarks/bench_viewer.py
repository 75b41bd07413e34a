"""Viewer benchmark: a 10,000-cell run in headless Chromium (Playwright), served by ``sd_sweep view``.

    python benchmarks/bench_viewer.py                         # 100 x 100 cells, 64 px images
    python benchmarks/bench_viewer.py --cols 100 --rows 100 --pages 1 --dir /tmp/bench-viewer

Makes the run folder once (the fake backend of ``tests/fakes.py`` through the real run loop, so
images, thumbnails, ``cells.jsonl`` and ``plan.json`` are what a sweep writes; ``--dir`` keeps it
for the next time), serves it with the viewer's server and measures, in the page:

- **first screen**: from navigation start (``performance.now()``) to the first frame where every
  thumbnail inside the grid's visible box has loaded (goal: under 1 s);
- **pivot**: changing the column axis (the role select's ``change``), from before the change to
  the frame after it (``requestAnimationFrame`` then a task), median of ``--pivots`` changes
  (goal: under 200 ms);
- **memory**: ``JSHeapUsedSize`` and the DOM node count from CDP ``Performance.getMetrics``.

Not a pass/fail test: it prints the figures (docs/benchmarks.md has some).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.browser import CHROMIUM, FLAGS

# runs before the page's own scripts: note the first frame with a full screen of loaded thumbnails
FIRST_SCREEN = """
(() => {
  window.__firstScreen = null;
  function check() {
    const box = document.getElementById("sv-scroll");
    if (box) {
      const view = box.getBoundingClientRect();
      const bottom = Math.min(view.bottom, innerHeight), right = Math.min(view.right, innerWidth);
      const imgs = [...box.querySelectorAll(".sv-cell img")].filter((img) => {
        const r = img.getBoundingClientRect();
        return r.bottom > view.top && r.top < bottom && r.right > view.left && r.left < right;
      });
      if (imgs.length && imgs.every((img) => img.complete && img.naturalWidth > 0)) {
        window.__firstScreen = { ms: performance.now(), shown: imgs.length };
        return;
      }
    }
    requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})();
"""

PIVOT = """
async ([a, b, times]) => {
  const frame = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
  const out = [];
  for (let n = 0; n < times; n++) {
    const name = n % 2 ? b : a;
    const select = document.querySelector(`select.sv-role-select[data-dim="${name}"]`);
    const start = performance.now();
    select.value = "x";
    select.dispatchEvent(new Event("change"));
    document.getElementById("sv-grid").getBoundingClientRect();   // force the layout
    await frame();
    out.push(performance.now() - start);
  }
  return out;
}
"""


def make_run(run_dir: Path, cols: int, rows: int, pages: int, size: int) -> None:
    from sd_sweep.core.run import run_sweep
    from sd_sweep.core.spec import spec_from_dict
    from tests.fakes import FakeBackend

    axes = [
        {"param": "seed", "values": f"1-{cols}"},
        {"param": "steps", "values": f"1-{rows}"},
    ]
    if pages > 1:
        axes.append({"param": "cfg_scale", "values": [float(n) for n in range(1, pages + 1)]})
    document = {
        "name": run_dir.name,
        "base": {"prompt": "a lighthouse at dusk", "width": size, "height": size, "batch_size": 8},
        "axes": axes,
        "layout": {"x": "seed", "y": "steps"},
        "limits": {"max_cells": cols * rows * pages},
    }
    result = run_sweep(spec_from_dict(document), FakeBackend(), run_dir, draw_grids=False)
    assert result.state == "finished", result.state


def measure(url: str, pivots: int, width: int, height: int, zoom: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.add_init_script(f"localStorage.setItem('sd-sweep-zoom', '{zoom}');")
        page.add_init_script(FIRST_SCREEN)
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        page.goto(url)
        page.wait_for_function("window.__firstScreen !== null", timeout=60_000)
        first = page.evaluate("window.__firstScreen")
        index_ms = page.evaluate(
            "performance.getEntriesByType('resource').find((e) => e.name.endsWith('/index')).responseEnd"
        )
        names = page.evaluate("sdSweepViewer.state.index.dimensions.map((d) => d.name)")
        times = page.evaluate(PIVOT, [names[1], names[0], pivots])
        page.wait_for_timeout(300)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        cells = page.evaluate("document.querySelectorAll('.sv-cell').length")
        loaded = page.evaluate("[...document.images].filter((i) => i.complete && i.naturalWidth).length")
        browser.close()
    return {
        "first_screen_ms": first["ms"],
        "index_ms": index_ms,
        "thumbs_on_first_screen": first["shown"],
        "pivot_ms_median": statistics.median(times),
        "pivot_ms_max": max(times),
        "js_heap_mb": metrics["JSHeapUsedSize"] / 2**20,
        "dom_nodes": metrics["Nodes"],
        "cell_elements": cells,
        "images_loaded": loaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cols", type=int, default=100, help="values of the column axis (seed)")
    parser.add_argument("--rows", type=int, default=100, help="values of the row axis (steps)")
    parser.add_argument("--pages", type=int, default=1, help="values of a page axis (cfg_scale); 1: none")
    parser.add_argument("--size", type=int, default=64, help="image size in px")
    parser.add_argument("--pivots", type=int, default=6)
    parser.add_argument("--zoom", type=int, default=192, help="the page's cell size in px (48 to 768)")
    parser.add_argument("--viewport", default="1280x900")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/sd-sweep-bench-viewer"), help="where the run is kept")
    args = parser.parse_args()
    from sd_sweep.viewer.server import serve_in_thread

    cells = args.cols * args.rows * args.pages
    run_dir = args.dir / f"view-{args.cols}x{args.rows}x{args.pages}-{args.size}px"
    print(f"{platform.platform()}, Python {platform.python_version()}")
    if not (run_dir / "run.json").is_file():
        started = time.perf_counter()
        make_run(run_dir, args.cols, args.rows, args.pages, args.size)
        print(f"made {cells} cells in {time.perf_counter() - started:.1f} s: {run_dir}")
    server, url = serve_in_thread(run_dir)
    try:
        width, height = (int(v) for v in args.viewport.split("x"))
        row = measure(url, args.pivots, width, height, args.zoom)
    finally:
        server.shutdown()
        server.server_close()
    print(
        f"{cells} cells ({args.cols} x {args.rows} x {args.pages}), viewport {args.viewport}, "
        f"cells of {args.zoom} px: "
        f"first screen {row['first_screen_ms']:.0f} ms ({row['thumbs_on_first_screen']} thumbnails; "
        f"index received at {row['index_ms']:.0f} ms); "
        f"pivot median {row['pivot_ms_median']:.0f} ms (max {row['pivot_ms_max']:.0f}); "
        f"JS heap {row['js_heap_mb']:.1f} MB, {row['dom_nodes']:.0f} DOM nodes, "
        f"{row['cell_elements']} cell elements, {row['images_loaded']} images loaded"
    )


if __name__ == "__main__":
    main()
