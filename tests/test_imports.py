"""The import rules of the architecture, enforced by walking every module's imports.

Leaves (config, errors, numerics, isa, fileio) import no other part of bitmill than leaves;
sim may read the IR types (compiler.ir) but knows no hardware and no torch; hw never imports
sim, compiler or models; compiler never imports hw or torch; models import torch, leaves and
the IR they export to. report and cli may import anything.
"""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = {"bitmill": REPO / "bitmill", "bitmill.compiler": REPO / "compiler",
            "bitmill.sim": REPO / "sim", "bitmill.hw": REPO / "hw", "bitmill.models": REPO / "models"}
LEAVES = ("bitmill.config", "bitmill.errors", "bitmill.numerics", "bitmill.isa", "bitmill.fileio",
          "bitmill.timing", "bitmill.packing", "bitmill.precision", "bitmill.resnets", "bitmill.program_file",
          "bitmill.geometry",
          "bitmill")
FREE = ("bitmill.cli", "bitmill.__main__", "bitmill.report", "bitmill.demo", "bitmill.cli_models",
        "bitmill.cli_hw", "bitmill.cli_compile", "bitmill.report_qat", "bitmill.flow")

# module prefix -> (allowed bitmill prefixes beyond the leaves, forbidden third-party roots)
RULES = [
    ("bitmill.sim.cosim", ("bitmill.hw", "bitmill.sim", "bitmill.compiler.ir"), ("torch",)),
    ("bitmill.sim", ("bitmill.sim", "bitmill.compiler.ir"), ("torch", "amaranth", "cocotb")),
    ("bitmill.hw", ("bitmill.hw",), ("torch",)),
    ("bitmill.compiler", ("bitmill.compiler", "bitmill.sim.golden"), ("torch", "amaranth")),
    ("bitmill.models", ("bitmill.models", "bitmill.compiler.ir", "bitmill.compiler.irio"),
     ("amaranth", "cocotb")),
]


def _modules():
    for pkg, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([pkg, *parts]), path


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; use absolute bitmill.* imports"
            if node.module not in PACKAGES:      # a package's own __init__ is empty
                yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_there_are_modules_to_check():
    names = [m for m, _ in _modules()]
    assert "bitmill.sim.golden" in names and "bitmill.compiler.ir" in names


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_import_rules(module, path):
    if module in FREE:
        return
    imported = set(_imports(path))
    top_level = {i.split(".")[0] for i in imported}
    ours = {i for i in imported if i.startswith("bitmill.")}
    if _under(module, LEAVES[:-1]):
        allowed, forbidden = (), ("torch", "cocotb")
    else:
        allowed, forbidden = next(((a, f) for p, a, f in RULES if _under(module, (p,))), ((), ()))
    bad = sorted(i for i in ours if not _under(i, LEAVES[:-1] + allowed))
    assert not bad, f"{module} imports {bad}, which the architecture forbids"
    assert not (top_level & set(forbidden)), f"{module} imports {sorted(top_level & set(forbidden))}"
