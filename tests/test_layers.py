"""The package's layers, as ARCHITECTURE.md draws them, hold in the code: every import (module
level or inside a function) runs down the layers or within a folder, text/ never needs torch,
poetry/ neither (nor anything it imports), and no two modules import each other round a cycle."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "zhrnn"
# Lowest first. A module may import its own layer's modules and anything below.
LAYERS = [
    {"zhrnn.errors", "zhrnn.options"},  # options.py: the declared options (flag, help, range), no torch
    {"zhrnn.text"},
    {"zhrnn.poetry"},  # the rules of verse (格律, rhyme tables, form templates, `zhrnn check`), no torch
    {"zhrnn.model", "zhrnn.counts", "zhrnn.checkpoint", "zhrnn.shipped"},
    {"zhrnn.generation"},
    {"zhrnn.training"},
    {"zhrnn.api"},
    {"zhrnn.serve"},
    {"zhrnn.cli", "zhrnn.interactive", "zhrnn", "zhrnn.__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> int:
    """The layer of a module: that of the longest entry it is or lies inside."""
    best = max((entry for layer in LAYERS for entry in layer if name == entry or name.startswith(entry + ".")
                and entry != "zhrnn"), key=len, default="zhrnn")
    return next(i for i, layer in enumerate(LAYERS) if best in layer)


def imports(path: Path) -> set[str]:
    """The zhrnn modules (and third-party top-level packages) a file imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            for alias in node.names:  # `from . import script` imports a module, `from .x import y` a name of x
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES else target)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_down_the_layers(name):
    mine = layer_of(name)
    upward = sorted(m for m in imports(MODULES[name]) if m.startswith("zhrnn") and m in MODULES and layer_of(m) > mine)
    assert not upward, f"{name} (layer {mine}) imports from above: {upward}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith(("zhrnn.text", "zhrnn.poetry"))))
def test_text_and_poetry_need_no_torch(name):
    assert not {m for m in imports(MODULES[name]) if m.split(".")[0] == "torch"}


def test_the_poetry_layer_runs_without_torch():
    """Everything poetry/ imports, however deep, loads no torch: checking a poem needs none. (The
    subprocess stands an empty zhrnn package in for the real one, so that poetry/ alone is tried.)"""
    code = f"""if True:
        import sys, types
        sys.modules["torch"] = None  # an import of torch fails outright
        package = types.ModuleType("zhrnn")
        package.__path__ = [{str(PACKAGE)!r}]
        sys.modules["zhrnn"] = package
        from zhrnn.poetry import forms, meter, rhyme, tones
        assert meter.check("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。").ok
        assert tones.rhyme_groups("诗", modern=True) == {{"十三支"}}  # 中华新韵, from pypinyin
        assert rhyme.groups_in("光霜") == ["江阳", "江阳"] and forms.template_of("浣溪沙")
        """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_no_import_cycle():
    graph = {n: {m for m in imports(p) if m in MODULES and m != n} for n, p in MODULES.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join(path + [nxt])}")
            if not state.get(nxt):
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in graph:
        if not state.get(name):
            visit(name, [name])


def test_check_and_help_import_no_torch(tmp_path):
    """`zhrnn check` and `zhrnn --help` load neither torch nor a model's code: the package, the CLI
    and the torchrun check of main() are lazy, and each command's options are built only when it
    runs. The public names still come on first use."""
    poem = tmp_path / "绝句.txt"
    poem.write_text("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。\n", encoding="utf-8")
    code = f"""if True:
        import contextlib, io, sys
        from zhrnn.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["check", {str(poem)!r}]) == 0
            try:
                main(["--help"])
            except SystemExit as e:
                assert e.code == 0
        assert "合律" in out.getvalue() and "check" in out.getvalue()
        assert "torch" not in sys.modules, "torch imported"
        import zhrnn
        assert "torch" not in sys.modules and zhrnn.__version__ and "TrainConfig" in dir(zhrnn)
        assert zhrnn.TrainConfig(iters=5).iters == 5 and zhrnn.load.__module__ == "zhrnn.api"
        assert "torch" in sys.modules
        """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_sampling_the_shipped_model_imports_nothing_it_does_not_use(tmp_path):
    """The first character waits for nothing but torch: writing from the default model imports
    neither jieba, OpenCC, pypinyin nor the server's libraries (each costs time to start)."""
    code = """if True:
        import contextlib, io, sys
        from zhrnn.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            assert main(["sample", "--start", "春", "--len", "8", "--seed", "1"]) == 0
        assert out.getvalue().startswith("春")
        heavy = [m for m in ("jieba", "opencc", "pypinyin", "starlette", "uvicorn", "httpx") if m in sys.modules]
        assert not heavy, heavy
        """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
