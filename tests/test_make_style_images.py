"""scripts/make_style_images.py reads GCompris' paintings out of a compiled Qt resource file (.rcc) without Qt."""
from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_style_images.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_style_images", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _name(text: str) -> bytes:
    return struct.pack(">HI", len(text), 0) + text.encode("utf-16-be")


def _rcc(version: int) -> bytes:
    """A hand-built resource: /img/plain.txt (stored) and /img/packed.txt (zlib), laid out as Qt's rcc does."""
    names = _name("img") + _name("plain.txt") + _name("packed.txt")
    img, plain, packed = 0, len(_name("img")), len(_name("img")) + len(_name("plain.txt"))
    raw = b"stored as is"
    squeezed = struct.pack(">I", 24) + zlib.compress(b"inflated back" + b"!" * 11)
    data = struct.pack(">I", len(raw)) + raw + struct.pack(">I", len(squeezed)) + squeezed
    extra = b"" if version == 1 else b"\0" * 8  # last-modified time, from format version 2 on
    tree = (struct.pack(">IHII", 0, 2, 1, 1) + extra            # 0: root, one child (node 1)
            + struct.pack(">IHII", img, 2, 2, 2) + extra        # 1: /img, two children (nodes 2, 3)
            + struct.pack(">IHHHI", plain, 0, 0, 0, 0) + extra  # 2: a stored file
            + struct.pack(">IHHHI", packed, 1, 0, 0, 4 + len(raw)) + extra)  # 3: a zlib-compressed file
    header_size = 20
    return (b"qres" + struct.pack(">IIII", version, header_size, header_size + len(tree),
                                  header_size + len(tree) + len(data)) + tree + data + names)


@pytest.mark.parametrize("version", [1, 2])
def test_reads_stored_and_compressed_files(version):
    files = _script().read_qt_resources(_rcc(version))
    assert files == {"/img/plain.txt": b"stored as is", "/img/packed.txt": b"inflated back" + b"!" * 11}


def test_rejects_other_files():
    with pytest.raises(ValueError, match="not a Qt binary resource"):
        _script().read_qt_resources(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)


def test_every_painting_is_registered_as_public_domain():
    from aigc_course.core.assets import registry

    entries = registry()
    for name in _script().PAINTINGS:
        entry = entries[f"style/{name}.jpg"]
        assert entry.licence.startswith("public domain") and "Debian package" in entry.source
        assert entry.size < 150_000
