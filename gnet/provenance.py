"""Where a recorded number came from: the library versions, the git commit and the command line.

Every file gnet writes about a run or a measurement (``run.json``, ``analysis.json``, the benchmarks' results)
records these beside its figures, so that a number can be traced to the code and the machine that made it.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from pathlib import Path

__all__ = ["command_line", "git_commit", "versions"]


def command_line(program: str | None = None) -> str:
    """How this process was started, as a shell command; ``program`` replaces ``sys.argv[0]`` (for ``-m`` runs)."""
    if program is None:
        program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([program, *map(shlex.quote, sys.argv[1:])])


def git_commit() -> str | None:
    """The commit of the gnet source tree, with ``-dirty`` if tracked files changed; None outside a git checkout."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = _git(source, "rev-parse", "HEAD")
        dirty = _git(source, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def _git(source: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10, check=True)
    return result.stdout.strip()


def versions() -> dict[str, str]:
    """Python, torch, torchvision, gnet and numpy versions."""
    import numpy
    import torch
    import torchvision

    import gnet

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "gnet": gnet.__version__,
        "numpy": numpy.__version__,
    }
