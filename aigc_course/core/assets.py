"""The registry of shipped files: what each is, where it came from, and its sha256.

Every file under ``data/`` that the course loads is listed in
``data/assets.json`` with its size, sha256, licence, source and the command that
made it. Code never opens a shipped file directly: it asks ``asset_path(name)``,
which checks the file first and explains what to do when it is missing or
damaged, instead of failing later with a traceback from deep inside NumPy or
safetensors.

    >>> asset_path("digits.npz")          # doctest: +SKIP
    PosixPath('.../data/digits.npz')

Set ``AIGC_DATA`` to use a data folder elsewhere (e.g. a read-only shared copy).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

REGISTRY_NAME = "assets.json"
FIX_HINT = ("restore it with `git checkout -- data/` (or re-clone the course), "
            "then check with `python -m aigc_course assets --verify`")


class AssetError(ValueError):
    """A shipped file exists but is not the file the course expects (wrong size or checksum)."""


@dataclass(frozen=True)
class Asset:
    """One shipped file. ``path`` is relative to the data folder."""

    path: str
    sha256: str
    size: int
    licence: str
    source: str
    made_by: str


def data_dir() -> Path:
    """The data folder: ``$AIGC_DATA`` if set, else ``data/`` next to the package."""
    return Path(os.environ.get("AIGC_DATA") or Path(__file__).resolve().parents[2] / "data")


def registry(root: Path | None = None) -> dict[str, Asset]:
    """Read ``assets.json``: a mapping from asset path to its :class:`Asset`."""
    file = (root or data_dir()) / REGISTRY_NAME
    if not file.exists():
        raise FileNotFoundError(f"the asset registry {file} is missing: {FIX_HINT}")
    entries = json.loads(file.read_text())
    return {entry["path"]: Asset(**entry) for entry in entries}


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}


def check_file(path: Path, sha256: str, size: int | None = None, what: str | None = None) -> Path:
    """Raise a clear error unless ``path`` exists with this size and sha256; return it.

    Results are cached per (path, size, modification time), so checking a file
    a notebook opens many times costs one hash.
    """
    what = what or str(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} is missing ({path}): {FIX_HINT}")
    stat = path.stat()
    if size is not None and stat.st_size != size:
        raise AssetError(f"{what} has {stat.st_size} bytes, expected {size}: the file is truncated or "
                         f"replaced; {FIX_HINT}")
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if _verified.get(key) != sha256:
        actual = sha256sum(path)
        if actual != sha256:
            raise AssetError(f"{what} is corrupted (sha256 {actual[:12]}..., expected {sha256[:12]}...); {FIX_HINT}")
        _verified[key] = sha256
    return path


def asset_path(name: str, root: Path | None = None) -> Path:
    """Path of the registered asset ``name``, verified against its size and sha256."""
    root = root or data_dir()
    assets = registry(root)
    if name not in assets:
        raise FileNotFoundError(f"{name!r} is not a registered asset; known: {', '.join(sorted(assets))}")
    asset = assets[name]
    return check_file(root / asset.path, asset.sha256, asset.size, what=f"data/{asset.path}")


@dataclass(frozen=True)
class AssetStatus:
    path: str
    size: int
    status: str  # "ok", "missing", "corrupted"
    detail: str = ""


def verify(root: Path | None = None) -> list[AssetStatus]:
    """Check every registered asset; return one status per file (never raises for a bad file)."""
    root = root or data_dir()
    statuses = []
    for asset in registry(root).values():
        try:
            check_file(root / asset.path, asset.sha256, asset.size)
            statuses.append(AssetStatus(asset.path, asset.size, "ok"))
        except FileNotFoundError as err:
            statuses.append(AssetStatus(asset.path, asset.size, "missing", str(err)))
        except AssetError as err:
            statuses.append(AssetStatus(asset.path, asset.size, "corrupted", str(err)))
    return statuses


def register(path: Path, *, licence: str, source: str, made_by: str, root: Path | None = None) -> Asset:
    """Add or refresh one file in the registry (used after building data or training a checkpoint)."""
    root = root or data_dir()
    relative = Path(path).resolve().relative_to(root.resolve()).as_posix()
    file = root / REGISTRY_NAME
    entries = {a.path: a for a in registry(root).values()} if file.exists() else {}
    asset = Asset(relative, sha256sum(root / relative), (root / relative).stat().st_size, licence, source, made_by)
    entries[relative] = asset
    file.write_text(json.dumps([asdict(a) for a in sorted(entries.values(), key=lambda a: a.path)], indent=2) + "\n")
    return asset
