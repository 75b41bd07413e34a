"""The run folder (format 2, and format 1 folders written by earlier versions): crashes, readers, pruning."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from sd_sweep.core.errors import SweepError
from sd_sweep.core.run import run_sweep, summary
from sd_sweep.core.sheets import render_run_grids
from sd_sweep.core.spec import spec_from_dict
from sd_sweep.core.store import FORMAT, FORMAT_1, LOG, RunStore, read_infotext
from tests.fakes import FakeBackend

ROOT = Path(__file__).resolve().parents[1]
FORMAT_1_RUN = ROOT / "tests" / "data" / "run-format-1"

DOC = {
    "name": "store",
    "base": {"prompt": "a cat", "negative_prompt": "", "steps": 1, "width": 8, "height": 8, "seed": 3, "batch_size": 2},
    "axes": [{"param": "cfg_scale", "values": "1-6"}, {"param": "prompt_sr", "values": "cat, dog"}],
    "layout": {"x": "cfg_scale", "y": "prompt_sr"},
}


def image_hashes(run_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run_dir / "images").glob("*.png"))}


def assert_consistent(run_dir: Path) -> RunStore:
    """Every recorded image is whole and carries its recorded infotext; the derived manifest agrees."""
    store = RunStore.open(run_dir)
    assert store.format == FORMAT
    assert store.ignored_lines == 0
    for cell_id in store.done_ids():
        path = store.image_path(cell_id)
        assert path is not None
        with Image.open(path) as image:
            image.load()
        assert read_infotext(path) == store.cells[cell_id]["infotext"]
    manifest = store.manifest
    done = {i for i, e in manifest["cells"].items() if e["state"] == "done"}
    assert done == store.done_ids()
    assert set(manifest["cells"]) >= {c["id"] for c in manifest["plan"]["cells"]}
    return store


# -- folders written by format 1 -------------------------------------------------------------------


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    folder = tmp_path / "old"
    shutil.copytree(FORMAT_1_RUN, folder)
    return folder


def test_a_format_1_folder_opens_with_its_cells_and_seeds(old_run: Path):
    store = RunStore.open(old_run)
    assert store.exists
    assert store.format == FORMAT_1
    assert store.state == "finished"
    plan_ids = [c["id"] for c in store.plan_dict["cells"]]
    assert len(plan_ids) == 4
    assert store.done_ids() >= set(plan_ids)
    assert len(store.stale_ids()) == 2  # the cells of the spec's first version
    assert store.counts() == {"cells": 4, "done": 4, "failed": 0, "pending": 0, "stale": 2}
    assert store.seed_resolutions == json.loads((old_run / "manifest.json").read_text())["seed_resolutions"]
    assert store.manifest["cells"] == json.loads((old_run / "manifest.json").read_text())["cells"]
    assert RunStore.read_state(old_run)["counts"]["done"] == 4
    assert not (old_run / "run.json").exists()  # reading writes nothing


def test_a_format_1_folder_regrids_and_is_migrated_by_that_write(old_run: Path):
    store = RunStore.open(old_run)
    paths = render_run_grids(store, x="prompt_sr", y="cfg_scale", prefix="slice")
    assert [p.name for p in paths] == ["slice.png"]
    with Image.open(paths[0]) as sheet:
        assert sheet.width > 8
        assert sheet.height > 2 * 8
    again = assert_consistent(old_run)
    assert again.grids == [{"file": "grids/slice.png", "title": ""}]
    assert again.done_ids() == store.done_ids()
    assert not (old_run / "manifest.json").exists()
    assert (old_run / "manifest-1.json").exists()


def test_a_format_1_folder_resumes_an_extended_spec_generating_only_the_new_cells(old_run: Path):
    before = image_hashes(old_run)
    spec_doc = copy.deepcopy(RunStore.open(old_run).spec)
    spec_doc["axes"][0]["values"] = "5, 7, 9"
    backend = FakeBackend()
    result = run_sweep(spec_from_dict(spec_doc), backend, old_run)
    assert result.state == "finished"
    assert len(result.reused) == 4
    assert len(result.generated) == 2
    assert sum(len(r.prompts) for r in backend.calls) == 2
    assert summary(result)["stale"] == 2
    after = image_hashes(old_run)
    assert {k: after[k] for k in before} == before  # nothing old was rewritten
    store = assert_consistent(old_run)
    assert store.counts() == {"cells": 6, "done": 6, "failed": 0, "pending": 0, "stale": 2}
    old_seed = json.loads((old_run / "manifest-1.json").read_text())["seed_resolutions"]
    assert store.seed_resolutions == old_seed
    assert all(c.params["seed"] == old_seed["base.seed"] for c in result.plan.cells)


def test_prune_deletes_the_images_of_earlier_versions_and_compacts_the_log(old_run: Path, capsys):
    from sd_sweep.cli import main

    stale = RunStore.open(old_run).stale_ids()
    assert main(["prune", str(old_run)]) == 0
    out = capsys.readouterr().out
    assert "2 stale cells pruned" in out
    for cell_id in stale:
        assert f"{cell_id}.png" in out
        assert not (old_run / "images" / f"{cell_id}.png").exists()
    store = assert_consistent(old_run)
    assert store.stale_ids() == []
    assert store.counts()["done"] == 4
    assert len((old_run / LOG).read_bytes().splitlines()) == 4


def test_prune_of_a_folder_without_a_run_names_it(tmp_path: Path, capsys):
    from sd_sweep.cli import main

    assert main(["prune", str(tmp_path / "nothing")]) != 0
    assert "nothing: no run manifest here" in capsys.readouterr().err


def test_an_unknown_format_is_refused_naming_the_file_and_the_format(tmp_path: Path):
    run_sweep(spec_from_dict(DOC), FakeBackend(), tmp_path / "r", draw_grids=False)
    (tmp_path / "r" / "run.json").write_text(json.dumps({"format": "sd-sweep-run/9"}))
    with pytest.raises(SweepError, match=r"run\.json: unknown run folder format 'sd-sweep-run/9'"):
        RunStore.open(tmp_path / "r")


# -- the log --------------------------------------------------------------------------------------


def test_a_torn_last_line_is_ignored_then_cut_off_by_the_next_append(tmp_path: Path):
    folder = tmp_path / "r"
    first = run_sweep(spec_from_dict(DOC), FakeBackend(), folder, draw_grids=False)
    with (folder / LOG).open("ab") as log:
        log.write(b'{"id":"0123456789ab","state":"done","file":"images/0123')
    store = RunStore.open(folder)
    assert store.ignored_lines == 0
    assert store.done_ids() == {c.id for c in first.plan.cells}
    grown = copy.deepcopy(DOC)
    grown["axes"][0]["values"] = "1-8"
    second = run_sweep(spec_from_dict(grown), FakeBackend(), folder, draw_grids=False)
    assert len(second.generated) == 4
    data = (folder / LOG).read_bytes()
    assert data.endswith(b"\n")
    assert b"images/0123\n" not in data
    assert b'"images/0123{' not in data
    assert [json.loads(line)["id"] for line in data.splitlines()][-4:] == second.generated
    assert assert_consistent(folder).counts()["done"] == 16


def test_a_logged_cell_whose_image_is_missing_is_generated_again(tmp_path: Path):
    folder = tmp_path / "r"
    first = run_sweep(spec_from_dict(DOC), FakeBackend(), folder, draw_grids=False)
    lost = first.plan.cells[5].id
    (folder / "images" / f"{lost}.png").unlink()
    store = RunStore.open(folder)
    assert lost not in store.done_ids()
    assert store.manifest["cells"][lost] == {"state": "pending"}
    again = run_sweep(spec_from_dict(DOC), FakeBackend(), folder, draw_grids=False)
    assert again.generated == [lost]
    assert assert_consistent(folder).counts()["done"] == 12


def test_batches_from_several_workers_in_any_order_are_all_recorded(tmp_path: Path):
    folder = tmp_path / "r"
    plan = run_sweep(spec_from_dict(DOC), FakeBackend(), folder, draw_grids=False).plan
    shutil.rmtree(folder)
    store = RunStore.open(folder)
    store.begin(plan, DOC)
    ids = [c.id for c in plan.cells]
    random.Random(1).shuffle(ids)
    batches = [ids[i : i + 3] for i in range(0, len(ids), 3)]

    def worker(batch: list[str]) -> None:
        store.record_batch([(i, Image.new("RGB", (8, 8), (len(i), 0, 0)), f"text {i}") for i in batch])

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.finish("finished")
    reopened = assert_consistent(folder)
    assert reopened.done_ids() == set(ids)
    assert reopened.counts() == {"cells": 12, "done": 12, "failed": 0, "pending": 0, "stale": 0}
    assert RunStore.read_state(folder)["counts"]["done"] == 12


def test_the_small_state_is_read_without_the_plan_or_the_log(tmp_path: Path):
    folder = tmp_path / "r"
    with pytest.raises(SweepError):
        run_sweep(spec_from_dict(DOC), FakeBackend(fail_on_call=4), folder, draw_grids=False)
    (folder / "plan.json").unlink()
    (folder / LOG).unlink()
    state = RunStore.read_state(folder)
    assert state["state"] == "failed"
    assert state["counts"] == {"cells": 12, "done": 6, "failed": 2, "pending": 4, "stale": 0}


# -- readers while the writer runs ----------------------------------------------------------------


class SlowBackend(FakeBackend):
    def generate(self, request, on_step=None, stop=None):
        time.sleep(0.002)
        return super().generate(request, on_step, stop)


def test_readers_see_a_consistent_folder_while_a_run_writes(tmp_path: Path):
    folder = tmp_path / "r"
    doc = copy.deepcopy(DOC)
    doc["axes"][0]["values"] = "1-40"
    doc["base"]["batch_size"] = 1
    writer = threading.Thread(target=run_sweep, args=(spec_from_dict(doc), SlowBackend(), folder))
    writer.start()
    seen: list[int] = []
    while writer.is_alive() or not seen:
        try:
            store = RunStore.open(folder)
        except SweepError as exc:  # only before anything is written
            assert not (folder / "run.json").exists(), exc
            continue
        done = store.done_ids()
        manifest = store.manifest
        assert {i for i, e in manifest["cells"].items() if e["state"] == "done"} == done
        seen.append(len(done))
    writer.join()
    assert seen == sorted(seen)
    assert len(set(seen)) > 3  # the readers did overlap the run
    assert assert_consistent(folder).counts()["done"] == 80


# -- a writer killed at any moment --------------------------------------------------------------

WRITER = """
import json, sys
sys.path.insert(0, {root!r})
from sd_sweep.core.run import RunObserver, run_sweep
from sd_sweep.core.spec import spec_from_dict
from tests.fakes import FakeBackend

class Ready(RunObserver):
    def started(self, plan, todo, first_passes_kept=frozenset()):
        print("ready", flush=True)

    def batch_finished(self, number, cells, saved):
        print("batch", flush=True)

run_sweep(spec_from_dict(json.loads(sys.argv[1])), FakeBackend(), sys.argv[2], observer=Ready())
print("done", flush=True)
"""


def test_a_run_killed_at_random_moments_resumes_to_the_images_of_an_uninterrupted_run(tmp_path: Path):
    doc = copy.deepcopy(DOC)
    doc["axes"][0] = {"param": "seed", "values": "1-150"}
    doc["layout"] = {"x": "seed", "y": "prompt_sr"}
    doc["base"]["batch_size"] = 1
    reference = run_sweep(spec_from_dict(doc), FakeBackend(), tmp_path / "reference")
    assert reference.state == "finished"
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(ROOT)))
    folder = tmp_path / "killed"
    rng = random.Random(20240)
    kills = 0
    progress: list[int] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(6):
        process = subprocess.Popen(
            [sys.executable, str(script), json.dumps(doc), str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", process.stderr.read() if process.stderr else ""
        for _ in range(rng.randint(3, 40)):  # some batches in, whatever the machine's load
            process.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.01))  # then a moment inside the writing of the next ones
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        kills += process.returncode == -signal.SIGKILL
        progress.append(assert_consistent(folder).counts()["done"])
    assert kills >= 3
    assert progress == sorted(progress), progress
    assert progress[0] > 0, progress
    assert progress[-1] < 300, progress
    partial = RunStore.open(folder).counts()["done"]
    result = run_sweep(spec_from_dict(doc), FakeBackend(), folder)
    assert result.state == "finished"
    assert len(result.generated) == 300 - partial
    assert image_hashes(folder) == image_hashes(tmp_path / "reference")
    store = assert_consistent(folder)
    assert store.counts() == {"cells": 300, "done": 300, "failed": 0, "pending": 0, "stale": 0}
    assert store.grids == RunStore.open(tmp_path / "reference").grids
