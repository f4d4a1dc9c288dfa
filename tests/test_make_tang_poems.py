"""scripts/make_tang_poems.py keeps well-formed quatrains and regulated verse, in Simplified Chinese, in a fixed order."""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_tang_poems.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_tang_poems", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_well_formed_couplets():
    script = _script()
    assert script.well_formed(["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"])         # 4 x 5
    assert script.well_formed(["故人西辭黃鶴樓，煙花三月下揚州。", "孤帆遠影碧空盡，唯見長江天際流。"])  # 4 x 7
    assert not script.well_formed(["床前明月光，疑是地上霜。"])                            # 2 lines
    assert not script.well_formed(["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉啊。"])  # 5 and 6
    assert not script.well_formed(["床前明月光，疑是地上霜", "舉頭望明月，低頭思故鄉。"])     # no stop
    assert not script.well_formed(["床前明月光，疑是（一作）霜。", "舉頭望明月，低頭思故鄉。"])  # a note


def test_build_converts_filters_and_orders(tmp_path):
    pytest.importorskip("opencc")
    script = _script()
    folder = tmp_path / "package" / "dist" / "quantangshi"
    folder.mkdir(parents=True)
    poems = [{"author": "李白", "title": "靜夜思", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
             {"author": "李白", "title": "送孟浩然之廣陵",
              "paragraphs": ["故人西辭黃鶴樓，煙花三月下揚州。", "孤帆遠影碧空盡，唯見長江天際流。"]},
             {"author": "某", "title": "殘篇", "paragraphs": ["春風吹又生。"]}]
    (folder / "poet.tang.0.json").write_text(json.dumps(poems[:2], ensure_ascii=False), encoding="utf-8")
    (folder / "poet.tang.1000.json").write_text(json.dumps(poems[1:], ensure_ascii=False), encoding="utf-8")
    text, stats = script.build(tmp_path / "package")
    expected = ["床前明月光，疑是地上霜。\n举头望明月，低头思故乡。",          # 舉頭 -> 举头, 鄉 -> 乡
                "故人西辞黄鹤楼，烟花三月下扬州。\n孤帆远影碧空尽，唯见长江天际流。"]
    expected.sort(key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    assert text == "\n\n".join(expected) + "\n"
    assert stats["tang poems"] == 4 and stats["well-formed"] == 3 and stats["unique"] == 2 and stats["kept"] == 2
