"""The import rules of the architecture, enforced by walking every module's imports.

Leaves (config, errors, numerics, isa, fileio, timing, packing, precision, resnets, geometry,
program_file, provenance, hostlink) import no other part
of bitmill than leaves; sim may read the IR types (compiler.ir) but knows no hardware and no
torch, except sim.verify and sim.latency, which join compiler and simulator and may import the
compiler; hw
never imports sim, compiler or models; compiler never imports hw or torch; models import torch,
leaves, the IR they export to and sim.golden (the numpy reference, for integer-path accuracy).
The application layer, bitmill.cli.* and bitmill.__main__, may import anything; nothing else
imports bitmill.cli, and the cli modules import each other without a cycle.
"""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = {"bitmill": REPO / "bitmill", "bitmill.compiler": REPO / "compiler",
            "bitmill.sim": REPO / "sim", "bitmill.hw": REPO / "hw", "bitmill.models": REPO / "models",
            "bitmill.configs": REPO / "configs"}
LEAVES = ("bitmill.config", "bitmill.errors", "bitmill.numerics", "bitmill.isa", "bitmill.fileio",
          "bitmill.timing", "bitmill.packing", "bitmill.precision", "bitmill.resnets",
          "bitmill.program_file", "bitmill.geometry", "bitmill.provenance", "bitmill.hostlink")
APPLICATION = ("bitmill.cli", "bitmill.__main__")

# module prefix -> (allowed bitmill prefixes beyond the leaves, forbidden third-party roots);
# the first matching prefix decides
RULES = [
    ("bitmill.sim.cosim", ("bitmill.hw", "bitmill.sim", "bitmill.compiler.ir"), ("torch",)),
    ("bitmill.sim.verify", ("bitmill.sim", "bitmill.compiler"), ("torch", "amaranth", "cocotb")),
    ("bitmill.sim.latency", ("bitmill.sim", "bitmill.compiler"), ("torch", "amaranth", "cocotb")),
    ("bitmill.sim", ("bitmill.sim", "bitmill.compiler.ir"), ("torch", "amaranth", "cocotb")),
    ("bitmill.hw", ("bitmill.hw",), ("torch",)),
    ("bitmill.compiler", ("bitmill.compiler", "bitmill.sim.golden"), ("torch", "amaranth")),
    ("bitmill.models", ("bitmill.models", "bitmill.compiler.ir", "bitmill.compiler.irio",
                        "bitmill.sim.golden"), ("amaranth", "cocotb")),
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


MODULES = list(_modules())
CLI_MODULES = {m: p for m, p in MODULES if _under(m, ("bitmill.cli",))}


def test_there_are_modules_to_check():
    names = [m for m, _ in MODULES]
    assert "bitmill.sim.golden" in names and "bitmill.compiler.ir" in names
    assert {"bitmill.cli", "bitmill.cli.app", "bitmill.sim.verify"} <= set(names)


@pytest.mark.parametrize("module,path", MODULES, ids=lambda v: v if isinstance(v, str) else "")
def test_import_rules(module, path):
    imported = set(_imports(path))
    ours = {i for i in imported if i.startswith("bitmill.")}
    if _under(module, APPLICATION):
        return                                  # the application layer may import anything
    cli = sorted(i for i in ours if _under(i, ("bitmill.cli",)))
    assert not cli, f"{module} imports {cli}: only the application layer imports bitmill.cli"
    top_level = {i.split(".")[0] for i in imported}
    if _under(module, LEAVES):
        allowed, forbidden = (), ("torch", "cocotb")
    else:
        allowed, forbidden = next(((a, f) for p, a, f in RULES if _under(module, (p,))), ((), ()))
    bad = sorted(i for i in ours if not _under(i, LEAVES + allowed))
    assert not bad, f"{module} imports {bad}, which the architecture forbids"
    assert not (top_level & set(forbidden)), f"{module} imports {sorted(top_level & set(forbidden))}"


def _cli_module(name: str) -> str | None:
    while name and name not in CLI_MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _cli_edges() -> dict[str, set[str]]:
    """cli module -> the cli modules it imports. ``from bitmill.cli import x`` depends on the
    module ``bitmill.cli.x`` where there is one, else on the package's ``__init__``."""
    edges = {}
    for module, path in CLI_MODULES.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {_cli_module(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                targets |= {_cli_module(f"{node.module}.{a.name}") for a in node.names}
        edges[module] = targets - {None, module}
    return edges


def test_cli_modules_have_no_import_cycle():
    edges = _cli_edges()
    assert edges["bitmill.cli.app"] >= {"bitmill.cli.args", "bitmill.cli.demo"}
    state: dict[str, str] = {}

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                pytest.fail(f"import cycle among cli modules: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_cli_modules_import_each_other_at_module_level():
    for module, path in CLI_MODULES.items():
        for func in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) else [])
                assert not any(_under(n, ("bitmill.cli",)) for n in names), \
                    f"{module}.{func.name} imports {names} inside the function"
