"""measured: import measured results from local copies of public sources."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from ..errors import SiliconomicsError
from ..measured.importers import COLUMNS, IMPORTERS, complete
from .common import app, err, out
from .inputs import writable_cb

measured_app = typer.Typer(help="Measured results: import from local copies of public sources.")
app.add_typer(measured_app, name="measured")


class DirTree:
    """A :class:`~siliconomics.measured.importers.SourceTree` over a local folder or file."""

    def __init__(self, root: Path, label: str) -> None:
        self.root = root
        self.label = label

    def list(self, pattern: str) -> list[str]:
        if self.root.is_file():
            return [self.root.name] if self.root.match(pattern) else []
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern) if p.is_file())

    def read(self, path: str) -> str:
        p = self.root if self.root.is_file() else self.root / path
        try:
            return p.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise SiliconomicsError(f"cannot read {p}: {e.strerror}") from None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob ('*' within a folder, '**/' any folders, '?') as an anchored regex."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


class GitTree:
    """A SourceTree over one commit of a git repository (bare mirrors included), read with
    ``git ls-tree`` / ``git show`` so that a large results tree need not be checked out."""

    def __init__(self, git_dir: Path, rev: str, label: str | None) -> None:
        self.git_dir = git_dir
        self.commit = self._git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
        self.label = label if label and "@" in label else f"{label or git_dir}@{self.commit}"
        listing = self._git("ls-tree", "-r", "--name-only", "-z", self.commit)
        self._paths = sorted(p for p in listing.split("\0") if p)

    def _git(self, *args: str) -> str:
        try:
            res = subprocess.run(
                ["git", "--git-dir", str(self.git_dir), *args],
                capture_output=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError) as e:
            raise SiliconomicsError(
                f"--git-rev: git {args[0]} failed in {self.git_dir}: {e}"
            ) from None
        return res.stdout.decode("utf-8", errors="replace")

    def list(self, pattern: str) -> list[str]:
        rx = _glob_regex(pattern)
        return [p for p in self._paths if rx.match(p)]

    def read(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")


@measured_app.command("formats")
def formats_cmd() -> None:
    """List the source formats that can be imported."""
    for name, imp in sorted(IMPORTERS.items()):
        out.print(f"{name}: {imp.description}", highlight=False)


@measured_app.command("import")
def import_cmd(
    fmt: Annotated[str, typer.Argument(help="source format (see 'siliconomics measured formats')")],
    path: Annotated[Path, typer.Argument(help="local copy of the source (folder or file)")],
    out_file: Annotated[
        Path, typer.Option("--out", help="CSV to write (normalized schema)", callback=writable_cb)
    ],
    label: Annotated[
        str | None, typer.Option(help="how rows cite the source, e.g. owner/repo@commit")
    ] = None,
    git_rev: Annotated[
        str | None,
        typer.Option(help="read PATH as a git repository (bare mirrors too) at this revision"),
    ] = None,
) -> None:
    """Turn a local copy of a source into normalized measured rows."""
    if fmt not in IMPORTERS:
        raise SiliconomicsError(f"unknown format '{fmt}'; allowed: {', '.join(sorted(IMPORTERS))}")
    if not path.exists():
        raise SiliconomicsError(f"{path}: no such file or folder")
    tree = GitTree(path, git_rev, label) if git_rev else DirTree(path, label or str(path))
    rows = IMPORTERS[fmt].read(tree)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(complete(r))
    try:
        out_file.write_text(buf.getvalue(), encoding="utf-8")
    except OSError as e:
        raise SiliconomicsError(f"--out {out_file}: cannot write: {e.strerror}") from None
    err.print(f"wrote {len(rows)} rows to {out_file}", highlight=False)
