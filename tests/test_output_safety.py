"""render never loses a user's files: a directory is replaced only when servewise wrote it and nothing
changed since (marker file with every file's hash); the MCP render writes only under the workspace root."""

from __future__ import annotations

import json
import subprocess

import pytest

from gitops.bundle import MARKER_FILE, write_bundle
from planner.errors import BadInput


def _tree(path):
    return sorted((p.relative_to(path).as_posix(), p.read_bytes() if p.is_file() else b"")
                  for p in path.rglob("*"))


def test_render_into_a_project_holding_a_plan_json_refuses_and_touches_nothing(cli, tmp_path):
    # Finding 1, as reported: `render --out "$PWD"` in a git project holding plan.json deleted .git and notes.
    tmp_path = tmp_path / "w"
    proj = tmp_path / "proj"
    proj.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    (proj / "notes.txt").write_text("notes\n")
    assert cli("recommend", "--use-case", "chatbot", "--qps", "5", "--out", str(proj / "plan.json"),
               "--json").exit_code == 0
    before = _tree(proj)
    r = cli("render", "--plan", str(proj / "plan.json"), "--out", str(proj), "--json")
    assert r.exit_code == 2 and "not replaced" in json.loads(r.stdout)["error"]["message"]
    assert _tree(proj) == before
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no temp or aside directory left behind


def test_a_bundle_servewise_wrote_is_replaced_atomically(bundle, tmp_path):
    out = tmp_path / "deploy"
    write_bundle(bundle, out)
    marker = json.loads((out / MARKER_FILE).read_text())
    assert marker["servewise_bundle"] == f"{bundle.namespace}/{bundle.name}" and len(marker["hash"]) == 64
    assert set(marker["files"]) == set(bundle.files)
    (out / "plan.json").unlink()  # a file servewise wrote and the user removed is nothing to lose
    write_bundle(bundle, out)
    assert {p.name for p in out.iterdir()} == {*bundle.files, MARKER_FILE}
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_bundle(bundle, empty)
    assert (empty / "plan.json").exists()


@pytest.mark.parametrize("change", ["added file", "edited file", "added dir", "symlink", "bad marker", "no marker"])
def test_a_bundle_dir_someone_changed_is_never_replaced(bundle, tmp_path, change):
    out = tmp_path / "deploy"
    write_bundle(bundle, out)
    if change == "added file":
        (out / "my-patch.yaml").write_text("kind: Secret\n")
    elif change == "edited file":
        (out / "inferenceservice.yaml").write_text((out / "inferenceservice.yaml").read_text() + "# tuned by hand\n")
    elif change == "added dir":
        (out / ".git").mkdir()
        (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    elif change == "symlink":
        (out / "home").symlink_to(tmp_path)
    elif change == "bad marker":
        (out / MARKER_FILE).write_text("{not json")
    else:
        (out / MARKER_FILE).unlink()
    before = _tree(out)
    with pytest.raises(BadInput, match="not replaced"):
        write_bundle(bundle, out)
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["deploy"]


def test_files_and_odd_targets_are_refused(bundle, tmp_path):
    f = tmp_path / "plan.json"
    f.write_text("{}")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    for target in (f, link, tmp_path.anchor):
        with pytest.raises(BadInput):
            write_bundle(bundle, target)
    assert f.read_text() == "{}" and link.is_symlink()
