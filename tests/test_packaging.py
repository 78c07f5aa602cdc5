"""Installing and starting: the Python floor, a light command line, built-in configs, the wheel."""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("llmskel/**/*.py"), *ROOT.glob("scripts/*.py")])

# standard-library modules and names that appeared after Python 3.10 (the floor in pyproject.toml)
NEW_MODULES = {"tomllib": "3.11", "importlib.resources.abc": "3.11", "wsgiref.types": "3.11"}
NEW_NAMES = {
    "typing": {"Self", "LiteralString", "Never", "assert_never", "assert_type", "reveal_type",
               "NotRequired", "Required", "TypeVarTuple", "Unpack", "dataclass_transform",
               "get_overloads", "clear_overloads", "override", "TypeAliasType"},
    "datetime": {"UTC"},
    "enum": {"StrEnum", "ReprEnum", "verify", "EnumCheck", "member", "nonmember", "global_enum"},
    "asyncio": {"TaskGroup", "timeout", "timeout_at", "Runner"},
    "hashlib": {"file_digest"},
    "contextlib": {"chdir"},
    "operator": {"call"},
    "itertools": {"batched"},
}  # fmt: skip
NEW_BUILTINS = {"ExceptionGroup", "BaseExceptionGroup"}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: ... except ImportError`` (a fallback for older Pythons)?"""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            return True
    return False


def newer_python_uses(source: str, filename: str = "<src>") -> list[str]:
    """Uses of what Python 3.10 lacks, as ``file:line what (3.11)`` strings."""
    tree = ast.parse(source, filename)
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    found = []
    for node in ast.walk(tree):
        what = None
        if type(node).__name__ == "TryStar":  # ``except*`` (the node exists only from 3.11)
            what = "except* (3.11)"
        elif isinstance(node, ast.Import):
            what = next(
                (f"import {a.name} ({NEW_MODULES[a.name]})" for a in node.names if a.name in NEW_MODULES),
                None,
            )
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module in NEW_MODULES:
                what = f"from {node.module} import ... ({NEW_MODULES[node.module]})"
            elif node.module in NEW_NAMES:
                bad = [a.name for a in node.names if a.name in NEW_NAMES[node.module]]
                what = f"from {node.module} import {', '.join(bad)} (3.11+)" if bad else None
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in NEW_NAMES.get(node.value.id, ()):
                what = f"{node.value.id}.{node.attr} (3.11+)"
        elif isinstance(node, ast.Name) and node.id in NEW_BUILTINS and isinstance(node.ctx, ast.Load):
            what = f"{node.id} (3.11)"
        if what and not _guarded(node, parents):
            found.append(f"{filename}:{getattr(node, 'lineno', 0)} {what}")
    return found


def test_no_standard_library_newer_than_the_python_floor():
    floor = next(
        line for line in (ROOT / "pyproject.toml").read_text().splitlines() if "requires-python" in line
    )
    assert '">=3.10"' in floor  # this scan is for that floor; change both together
    found = [
        hit
        for p in SOURCES
        for hit in newer_python_uses(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))
    ]
    assert not found, "Python 3.11+ only:\n" + "\n".join(found)


def test_the_scan_catches_what_broke_python_3_10():
    # the import that made every command fail on 3.10, and others of its kind
    assert newer_python_uses("from importlib.resources.abc import Traversable\n")
    assert newer_python_uses("import tomllib\n")
    assert newer_python_uses("from typing import Any, Self\n")
    assert newer_python_uses("import typing\nx: typing.Self\n")
    assert newer_python_uses("raise ExceptionGroup('x', [ValueError()])\n")
    guarded = "try:\n    from importlib.resources.abc import T\nexcept ImportError:\n    from importlib.abc import T\n"
    assert not newer_python_uses(guarded)
    if sys.version_info >= (3, 11):
        assert newer_python_uses("try:\n    pass\nexcept* ValueError:\n    pass\n")


def _python310() -> str | None:
    """A real Python 3.10 interpreter on this machine, if any (pyenv's, Debian's, $LLMSKEL_PY310)."""
    cands = [os.environ.get("LLMSKEL_PY310", ""), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10"))),
             "/usr/bin/python3.10", shutil.which("python3.10") or ""]  # fmt: skip
    for c in cands:
        if not c or not os.path.exists(c):
            continue
        r = subprocess.run(
            [c, "-c", "import sys; print(sys.version_info[:2] == (3, 10))"], capture_output=True, text=True
        )
        if r.returncode == 0 and r.stdout.strip() == "True":
            return c
    return None


def test_python_3_10_compiles_the_package_and_builds_the_command_line(tmp_path):
    py = _python310()
    if py is None:
        pytest.skip("no Python 3.10 interpreter on this machine (the AST scan above still runs)")
    # every file compiles under 3.10 (syntax), written outside the tree
    r = subprocess.run([py, "-m", "compileall", "-q", "-d", "x", "-f", "llmskel", "scripts"],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)})  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    # the command line and the template module (the one that failed) import with 3.10's standard library alone
    code = (
        "import sys; from llmskel.cli import build_parser; build_parser().parse_args(['train', '--config', 'x']);"
        "import llmskel.text.resources as r; print(r.Traversable.__module__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": str(tmp_path)}
    r = subprocess.run([py, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "importlib.abc"


# ------------------------------------------------------------------------------------------------
def _imported_by(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code + "; import sys, json; print(json.dumps(sorted(sys.modules)))"],
                         cwd=ROOT, capture_output=True, text=True, env=env, check=True).stdout  # fmt: skip
    return set(json.loads(out.splitlines()[-1]))


def test_building_the_command_line_imports_no_heavy_module():
    mods = _imported_by("from llmskel.cli import build_parser; p = build_parser(); p.format_help()")
    heavy = {"torch", "numpy", "transformers", "accelerate", "datasets", "open_clip", "peft", "matplotlib"}
    assert not heavy & mods, f"building the parser imported {sorted(heavy & mods)}"
    # and every command is still there
    assert _imported_by("import llmskel.text")  # the package itself is light too
    assert "torch" not in _imported_by("import llmskel.text")


def test_help_lists_every_command_and_python_dash_m_works():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-m", "llmskel", "--help"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    for cmd in ("train", "eval", "predict", "demo", "zeroshot", "fewshot", "recognize", "data", "describe"):
        assert cmd in r.stdout


def test_text_package_exports_resolve_lazily():
    import llmskel.text as t

    assert set(t._LAZY) == set(t.__all__)
    for name in t.__all__:
        assert getattr(t, name) is not None
    with pytest.raises(AttributeError):
        t.no_such_name  # noqa: B018


def test_prepare_format_is_checked_against_the_dataset_registry(tmp_path, capsys):
    """``--format`` has no argparse choices (they would import the readers while building the
    parser); ``data prepare`` checks the name itself and lists every preparable dataset."""
    from llmskel.cli import main
    from llmskel.data.prepare import formats

    (tmp_path / "src").mkdir()
    rc = main(
        [
            "data",
            "prepare",
            "--src",
            str(tmp_path / "src"),
            "--format",
            "no-such",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "unknown data format 'no-such'" in err
    for name in formats():
        assert name in err


# ------------------------------------------------------------------------------------------------
def test_builtin_config_names_resolve(tmp_path, monkeypatch):
    from llmskel.engine.config import list_builtin_configs, load_experiment, resolve_config_path
    from llmskel.errors import ConfigError

    names = list_builtin_configs()
    assert set(names) == {p.stem for p in (ROOT / "configs").glob("*.yaml")}
    monkeypatch.chdir(tmp_path)  # away from the checkout: names and configs/<name>.yaml still resolve
    cfg = load_experiment("ucla_ctrgcn_cpu")
    assert cfg.name == "ucla_ctrgcn_cpu" and cfg.model.name.startswith("ctrgcn")
    assert resolve_config_path("configs/ucla_ctrgcn_cpu.yaml") == resolve_config_path("ucla_ctrgcn_cpu.yaml")
    # a config with ``base:`` inherits from its shipped neighbour
    assert load_experiment("ucla_ctrgcn_gap").data.dataset == cfg.data.dataset
    # a path still works, and wins over a built-in of the same name
    (tmp_path / "configs").mkdir()
    own = tmp_path / "configs" / "ucla_ctrgcn_cpu.yaml"
    own.write_text("name: mine\n")
    assert load_experiment("configs/ucla_ctrgcn_cpu.yaml").name == "mine"
    with pytest.raises(ConfigError, match="built-in configs: .*ucla_ctrgcn_cpu"):
        load_experiment("ucla_ctrgcn_cpx")
    with pytest.raises(ConfigError, match="no such file"):
        load_experiment(str(tmp_path / "elsewhere" / "ucla_ctrgcn_cpu.yaml"))


def test_train_module_form_and_script_share_one_entry():
    from llmskel import train

    src = (ROOT / "scripts" / "train.py").read_text()
    assert "from llmskel.train import main" in src
    with pytest.raises(SystemExit) as e:
        train.main(["--help"])
    assert e.value.code == 0


def test_wheel_ships_configs_prompts_and_entry_points(tmp_path):
    """Build the wheel (no network, no build isolation) and check what an installed copy has."""
    src = tmp_path / "src"  # a copy, so that the build writes nothing into the checkout
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("llmskel", "prompts", "configs"):
        shutil.copytree(ROOT / name, src / name, ignore=skip, symlinks=True)
    if (src / "llmskel" / "prompts").is_symlink():  # a developer's link to ../prompts, not in git
        (src / "llmskel" / "prompts").unlink()
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(src)], capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = tmp_path.glob("llmskel-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for cfg in (ROOT / "configs").glob("*.yaml"):
        assert f"llmskel/configs/{cfg.name}" in names
    assert "llmskel/__main__.py" in names and "llmskel/train.py" in names
    assert any(n.startswith("llmskel/prompts/templates/") for n in names)
    meta = zipfile.ZipFile(whl).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    meta = meta.split("\n\n", 1)[0]  # the headers, not the README that follows
    assert "License-Expression: Apache-2.0" in meta
    assert any(n.endswith("licenses/LICENSE") for n in names)
    assert (
        "Requires-Dist: torch>=" in meta
        and "torch==" not in meta
        and "torchvision" not in meta.split("Provides-Extra")[0]
    )
    # names resolve from the unpacked wheel alone (no checkout on the path)
    site = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(site)
    code = (f"import llmskel.engine.config as c; assert str(c.builtin_config_dir()).startswith({str(site)!r});"
            "print(c.resolve_config_path('ucla_ctrgcn_cpu'))")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == str(site / "llmskel" / "configs" / "ucla_ctrgcn_cpu.yaml")


def test_missing_optional_package_names_the_extra(monkeypatch):
    from llmskel.errors import LlmskelError
    from llmskel.optional import MissingDependencyError, require
    from llmskel.text.encoders import build_text_encoder

    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if open_clip_torch were not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'llmskel\[clip\]'") as e:
        build_text_encoder("open_clip:ViT-B-32")
    assert isinstance(e.value, LlmskelError)  # the CLI prints it as one line
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingDependencyError, match=r"llmskel\[hf\]"):
        require("datasets", "export")
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingDependencyError, match=r"llmskel\[llm\]"):
        require("peft", "LoRA")
