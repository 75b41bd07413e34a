"""--version, status, run --json, the help of every argument and the program's name."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from sd_sweep import __version__, cli
from tests.fakes import FakeBackend

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"


@pytest.fixture
def fake_cli(monkeypatch):
    backend = FakeBackend()
    monkeypatch.setattr(cli, "_backend", lambda args: backend)
    return backend


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip().endswith(__version__)


def test_run_json_prints_only_json_on_stdout(fake_cli, tmp_path, capsys):
    assert cli.main(["run", str(EXAMPLE), "--out", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["state"] == "finished"
    assert "run folder:" in err


def test_status_of_a_run_folder(fake_cli, tmp_path, capsys):
    assert cli.main(["run", str(EXAMPLE), "--out", str(tmp_path), "--no-grid"]) == 0
    run_dir = tmp_path / "quickstart"
    capsys.readouterr()
    assert cli.main(["status", str(run_dir), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["name"] == "quickstart"
    assert status["state"] == "finished"
    assert status["counts"]["pending"] == 0
    assert status["resumable"] is False
    assert status["spec"]["name"] == "quickstart"
    assert cli.main(["status", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "done, 0 pending, 0 failed" in text
    assert "complete" in text
    assert cli.main(["status", str(tmp_path / "nothing")]) == 2
    assert "no run here" in capsys.readouterr().err


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, action


def test_every_argument_has_help_and_the_top_help_has_examples():
    parser = cli.build_parser()
    missing = [f"{prog} {action.dest}" for prog, action in _actions(parser) if not action.help]
    assert missing == []
    assert "examples:" in parser.format_help()


def test_the_installed_command_is_named_sd_sweep(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/sd-sweep", "--help"])
    assert cli.build_parser().prog == "sd-sweep"
    monkeypatch.setattr(sys, "argv", ["/x/sd_sweep/__main__.py"])
    assert cli.build_parser().prog == "python -m sd_sweep"


def test_every_public_method_of_the_client_has_a_docstring():
    import inspect

    from sd_sweep.client import SweepClient

    public = [name for name, _ in inspect.getmembers(SweepClient) if not name.startswith("_") or name == "__init__"]
    missing = [name for name in public if not inspect.getdoc(getattr(SweepClient, name))]
    assert missing == []
