"""Build the Chinese edition (中文版) of the lessons from the English notebooks plus translation files.

One source, never drifting: ``notebooks/NN_x.ipynb`` is the only place where a
lesson's code lives. ``translations/zh-CN/NN_x.json`` holds one entry per cell
that has prose (every markdown cell; every code cell with a comment or a
sentence in a string), keyed by a hash of the cell's English source. The
Chinese notebook ``notebooks/zh/NN_x.ipynb`` is the English one with each such
cell replaced by its translation, plus one first code cell that switches the
package's messages and figure fonts to Chinese.

    python scripts/zh_edition.py check           # name every missing, stale or unfaithful translation
    python scripts/zh_edition.py status          # share translated, Chinese characters per lesson
    python scripts/zh_edition.py update [NN ...] # add entries (zh: null) for new or changed cells
    python scripts/zh_edition.py build [NN ...]  # write notebooks/zh/ (sources only; `make notebooks` runs them)

Faithfulness checks, per translated cell:
* code: the token stream is identical once comments and prose strings are set
  aside, so code, numbers and identifiers cannot drift between editions. A
  string is prose when it reads as a sentence, or when it is shown on screen
  (an argument of ``print``/``set_title``/``xlabel``/..., or ``label=``/``title=``)
  and is a word rather than an identifier. Data stays byte-identical even when
  it reads like prose: strings with Chinese in the English edition (poems,
  few-shot prompts) and prompts fed to ``sample``/``generate``/``encode``;
* markdown: the same maths (``$...$``), the same numbers and the same links
  (a date may gain its month number: "March 16, 2023" -> "2023 年 3 月 16 日");
* terms: every English term of ``translations/terms.json`` that occurs in the
  English cell appears in its one Chinese rendering in the translation.
"""
from __future__ import annotations

import hashlib
import io
import json
import keyword
import re
import sys
import tokenize
from collections import Counter
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ZH_NOTEBOOKS = NOTEBOOKS / "zh"
TRANSLATIONS = ROOT / "translations" / "zh-CN"
TERMS = ROOT / "translations" / "terms.json"

LANGUAGE_CELL_ID = "zh-edition"
LANGUAGE_CELL = (
    "from aigc_course.core import i18n\n"
    "\n"
    'i18n.set_language("zh")  # 中文版：图表、控件与练习判定均使用中文'
)
# Comments that are instructions to tools, not prose: they stay English in both editions.
DIRECTIVE = re.compile(r"#\s*(NBVAL_\w+|##\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS|HINT)|noqa|type:|pragma|fmt:)")
STRING_BODY = re.compile(r"""^[rbfuRBFU]*('{3}|"{3}|'|")(.*)\1$""", re.S)
MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
LINK = re.compile(r"\]\(([^)\s]+)")
CJK = re.compile(r"[\u4e00-\u9fff]")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
MONTH_NAME = re.compile(r"\b(" + "|".join(MONTHS + ("Sept",) + tuple(m[:3] for m in MONTHS)) + r")\b")
MONTH_NUMBER = re.compile(r"(?<![\w.])(\d{1,2})\s?月")

# Calls whose direct arguments are shown to the learner, and keywords that name shown text: a single
# word there ("step", "share") is an axis label or a title, not an identifier.
DISPLAY_CALLS = frozenset({"set_title", "set_xlabel", "set_ylabel", "suptitle", "title", "xlabel", "ylabel",
                           "text", "print", "annotate"})
DISPLAY_KEYWORDS = frozenset({"label", "title", "xlabel", "ylabel"})
# Keywords whose values are options that code parses, even when they read like words ("upper center").
OPTION_KEYWORDS = frozenset({"loc", "textcoords", "xycoords", "ha", "va", "horizontalalignment", "verticalalignment",
                             "multialignment", "cmap", "color", "c", "facecolor", "edgecolor", "marker", "linestyle",
                             "ls", "family", "fontfamily", "weight", "fontweight", "fontsize", "interpolation",
                             "aspect", "bbox_inches", "format", "mode", "reduction", "dtype", "device"})
# Calls that feed a string to a tokenizer or a model, and names that hold a prompt: such strings are data.
PROMPT_CALLS = frozenset({"sample", "generate", "encode"})
PROMPT_NAME = re.compile(r"prompt", re.IGNORECASE)
# Shown but still code: identifiers, file names and paths ("vae_conv16", "model.pt", "data/text").
IDENTIFIER_LIKE = re.compile(r"\S*[_/\\]\S*|[\w-]+\.[A-Za-z]\w*")
LAYOUT = (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER, tokenize.COMMENT)


def lessons() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("[0-9A]*.ipynb"))  # lessons and appendices


def key(source: str) -> str:
    """The hash that ties a translation to one version of an English cell."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def _tokens(source: str) -> list[tokenize.TokenInfo] | None:
    # IPython syntax (%magic, !shell) is not Python: such lines are compared as text instead.
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return list(tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None


def _string_body(token: tokenize.TokenInfo) -> str:
    """The text of a string literal with its f-string fields blanked out."""
    match = STRING_BODY.match(token.string)
    return re.sub(r"\{[^{}'\"]*\}", " ", match.group(2) if match else token.string).strip()


def _is_prose_string(token: tokenize.TokenInfo) -> bool:
    """A string a learner reads wherever it stands: words separated by spaces, or one capitalised word ("Samples").

    Identifiers and data ("vae_conv16", "train") are not prose; f-string fields are ignored.
    """
    if token.type != tokenize.STRING:
        return False
    body = _string_body(token)
    if not re.search(r"[A-Za-z]{2,}", body):
        return False
    return bool(re.search(r"\S\s+\S", body) or re.fullmatch(r"[A-Z][a-z]{2,}[:.]?", body))


def string_kinds(tokens: list[tokenize.TokenInfo]) -> dict[int, str]:
    """What each string literal is, by its index in ``tokens``: "prose", "data" or "code".

    Decided from the tokens around it: the call it is a direct argument of (the
    innermost open bracket), the keyword it is passed as, the name it is assigned to.
    * data (must stay byte-identical): Chinese text in the English edition and the
      other items of a list, tuple or dict that holds it (inputs compared side by
      side), a positional argument of ``sample(``/``generate(``/``encode(``, a
      value given to a name or keyword containing "prompt";
    * prose (may be translated): a sentence anywhere, or a word shown on screen: a
      positional argument of a display call (``print``, ``set_title``, ``xlabel``, ...)
      or a ``label=``/``title=``/``xlabel=``/``ylabel=`` value, unless it looks like
      an identifier or a file name, or is the receiver of a method (``", ".join``);
    * code: everything else: lookup keys, options such as ``"ddim"``, and any value
      of an option keyword (``loc="upper center"``, ``textcoords="offset points"``).
    """
    significant = [i for i, t in enumerate(tokens) if t.type not in LAYOUT]
    frames: list[dict] = []  # one per open bracket: the called name (for "(") and the current argument's keyword
    kinds = {}
    for pos, i in enumerate(significant):
        t = tokens[i]
        before = tokens[significant[pos - 1]] if pos else None
        before2 = tokens[significant[pos - 2]] if pos > 1 else None
        after = tokens[significant[pos + 1]] if pos + 1 < len(significant) else None
        if t.type == tokenize.OP and t.string in "([{":
            called = (before.string if t.string == "(" and before is not None and before.type == tokenize.NAME
                      and not keyword.iskeyword(before.string) else None)
            frames.append({"bracket": t.string, "call": called, "keyword": None, "strings": []})
        elif t.type == tokenize.OP and t.string in ")]}":
            if frames:
                frame = frames.pop()
                if frame["call"] is None and any(kinds[j] == "data" for j in frame["strings"]):
                    kinds.update((j, "data") for j in frame["strings"])  # a collection of inputs: all data
        elif t.type == tokenize.OP and t.string == "," and frames:
            frames[-1]["keyword"] = None
        elif (t.type == tokenize.NAME and frames and frames[-1]["bracket"] == "(" and after is not None
              and after.string == "=" and before is not None and before.string in ("(", ",")):
            frames[-1]["keyword"] = t.string
        elif t.type == tokenize.STRING:
            if frames:
                frames[-1]["strings"].append(i)
            frame = frames[-1] if frames and frames[-1]["bracket"] == "(" else {"call": None, "keyword": None}
            positional = frame["keyword"] is None
            assigned = (before is not None and before.string == "=" and before2 is not None
                        and before2.type == tokenize.NAME and PROMPT_NAME.search(before2.string))
            if (CJK.search(t.string) or assigned or (frame["keyword"] and PROMPT_NAME.search(frame["keyword"]))
                    or (positional and frame["call"] in PROMPT_CALLS)):
                kinds[i] = "data"
            elif frame["keyword"] in OPTION_KEYWORDS:
                kinds[i] = "code"
            elif _is_prose_string(t):
                kinds[i] = "prose"
            else:
                body = re.sub(r"\{[^{}]*\}", " ", _string_body(t))  # text inside {fields} cannot be translated
                shown = ((positional and frame["call"] in DISPLAY_CALLS) or frame["keyword"] in DISPLAY_KEYWORDS)
                receiver = after is not None and after.string in (".", "[")
                wordy = re.search(r"[A-Za-z]{2,}", body) and not IDENTIFIER_LIKE.fullmatch(body)
                kinds[i] = "prose" if shown and wordy and not receiver else "code"
    return kinds


def _is_prose_comment(token: tokenize.TokenInfo) -> bool:
    return token.type == tokenize.COMMENT and not DIRECTIVE.match(token.string) and bool(re.search(r"[A-Za-z]{2}", token.string))


def needs_translation(cell) -> bool:
    """Markdown always; code when it has a comment or a string a learner reads as a sentence."""
    if cell.cell_type == "markdown":
        return True
    if cell.cell_type != "code":
        return False
    tokens = _tokens(cell.source)
    if tokens is None:
        return bool(re.search(r"#\s*[A-Za-z]{2}", cell.source))
    kinds = string_kinds(tokens)
    return any(_is_prose_comment(t) for t in tokens) or "prose" in kinds.values()


def code_skeleton(source: str) -> list[tuple[str, str]]:
    """The code as (kind, text) tokens without comments: what both editions must share.

    Prose strings are kept as ("prose", text); the comparison lets their text differ.
    Data strings are ("data", text): they must stay exactly as they are, like code.
    """
    tokens = _tokens(source)
    if tokens is None:
        return [("line", re.sub(r"#.*", "", line).rstrip()) for line in source.splitlines()]
    kinds = string_kinds(tokens)
    out = []
    for i, t in enumerate(tokens):
        if t.type == tokenize.COMMENT:
            if DIRECTIVE.match(t.string):
                out.append(("directive", t.string))
        elif t.type not in LAYOUT:
            out.append((kinds.get(i, "code"), t.string))
    return out


def code_difference(english: str, chinese: str) -> str | None:
    """What the translation changed besides comments and the English cell's prose strings; None if nothing."""
    en, zh = code_skeleton(english), code_skeleton(chinese)
    for (kind, text), (_, text_zh) in zip(en, zh):
        if kind == "prose":
            if not STRING_BODY.match(text_zh) or text_zh[:1].lower() != text[:1].lower():
                return f"the string {text!r} became {text_zh!r} (it must stay a string with the same prefix)"
            if _fields_and_numbers(text) != _fields_and_numbers(text_zh):
                return f"the string {text!r} became {text_zh!r} (its {{fields}} and numbers must stay)"
        elif text != text_zh:
            if kind == "data":
                return (f"the data string {text!r} became {text_zh!r} (Chinese text or a prompt that code reads "
                        f"must stay byte-identical)")
            return f"{text!r} became {text_zh!r}"
    if len(en) != len(zh):
        return f"the translation has {len(zh)} code tokens, the English {len(en)}"
    return None


def same_code(english: str, chinese: str) -> bool:
    """Whether the translation changed nothing but comments and the text of the English cell's prose strings."""
    return code_difference(english, chinese) is None


def _fields_and_numbers(string: str) -> tuple[Counter, Counter]:
    fields = re.findall(r"\{[^{}]*\}", string)
    return Counter(fields), Counter(NUMBER.findall(re.sub(r"\{[^{}]*\}", " ", string)))


def _month_numbers(english: str, chinese: str) -> Counter:
    """Numbers the Chinese may add to write a date: one "N 月" per English month name with that number.

    "March 16, 2023" is "2023 年 3 月 16 日": the 3 is the month, written as a word in the English.
    """
    months = Counter()
    for match in MONTH_NAME.finditer(english):
        months[str(next(n for n, m in enumerate(MONTHS, 1) if m.startswith(match.group(1)[:3])))] += 1
    return Counter(MONTH_NUMBER.findall(chinese)) & months


def load_terms() -> dict[str, str]:
    return json.loads(TERMS.read_text(encoding="utf-8")) if TERMS.exists() else {}


def translation_file(lesson: Path) -> Path:
    return TRANSLATIONS / f"{lesson.stem}.json"


def load_translations(lesson: Path) -> list[dict]:
    path = translation_file(lesson)
    return json.loads(path.read_text(encoding="utf-8"))["cells"] if path.exists() else []


def save_translations(lesson: Path, entries: list[dict]) -> None:
    path = translation_file(lesson)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"notebook": lesson.name, "cells": entries}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _where(lesson: Path, index: int, cell) -> str:
    first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
    return f"{lesson.name} cell {index} (id {cell.get('id', '?')}, {cell.cell_type}: {first!r})"


def faithfulness(english: str, chinese: str, kind: str, terms: dict[str, str], waived=()) -> list[str]:
    """What differs between an English cell and its translation that must not."""
    problems = []
    if kind == "code":
        difference = code_difference(english, chinese)
        if difference:
            problems.append("the code differs (only comments and sentences in strings may be translated): "
                            + difference)
        return problems
    math_en, math_zh = Counter(MATH.findall(english)), Counter(MATH.findall(chinese))
    if math_en != math_zh:
        problems.append(f"maths differs: missing {sorted((math_en - math_zh).elements())[:4]}, "
                        f"extra {sorted((math_zh - math_en).elements())[:4]}")
    strip = lambda text: MATH.sub(" ", text)  # noqa: E731  (numbers inside maths are checked above)
    num_en, num_zh = Counter(NUMBER.findall(strip(english))), Counter(NUMBER.findall(strip(chinese)))
    num_zh -= _month_numbers(strip(english), strip(chinese)) & (num_zh - num_en)
    if num_en != num_zh:
        problems.append(f"numbers differ: missing {sorted((num_en - num_zh).elements())[:6]}, "
                        f"extra {sorted((num_zh - num_en).elements())[:6]}")
    if Counter(LINK.findall(english)) != Counter(LINK.findall(chinese)):
        problems.append("links differ")
    lower = english.lower()
    for term, rendering in terms.items():
        if term in waived:
            continue
        if re.search(rf"(?<![\w-]){re.escape(term.lower())}(?:s|es)?(?![\w-])", lower) and rendering not in chinese:
            problems.append(f"term {term!r} must be rendered {rendering!r} (translations/terms.json)")
    return problems


def check_lesson(lesson: Path, terms: dict[str, str] | None = None) -> list[str]:
    """Every problem with one lesson's translations, each naming the cell."""
    terms = load_terms() if terms is None else terms
    nb = nbformat.read(lesson, as_version=4)
    entries = load_translations(lesson)
    by_key = {e["key"]: e for e in entries}
    by_id = {e.get("id"): e for e in entries}
    problems = []
    for index, cell in enumerate(nb.cells):
        if not needs_translation(cell):
            continue
        where = _where(lesson, index, cell)
        entry = by_key.get(key(cell.source))
        if entry is None:
            old = by_id.get(cell.get("id"))
            if old is not None:
                problems.append(f"stale: {where}: its English changed since it was translated; "
                                f"run `python scripts/zh_edition.py update {lesson.stem[:2]}` and "
                                f"translate the entry in {translation_file(lesson).relative_to(ROOT)}")
            else:
                problems.append(f"missing: {where} has no translation in "
                                f"{translation_file(lesson).relative_to(ROOT)}")
            continue
        if not entry.get("zh"):
            problems.append(f"untranslated: {where}: the entry's zh is empty")
            continue
        for p in faithfulness(cell.source, entry["zh"], cell.cell_type, terms, entry.get("waive_terms", ())):
            problems.append(f"unfaithful: {where}: {p}")
    return problems


def update(lesson: Path) -> int:
    """Rewrite the lesson's translation file in notebook order: keep good entries, add empty ones."""
    nb = nbformat.read(lesson, as_version=4)
    entries = load_translations(lesson)
    by_key = {e["key"]: e for e in entries}
    by_id = {e.get("id"): e for e in entries}
    fresh, added = [], 0
    for cell in nb.cells:
        if not needs_translation(cell):
            continue
        k = key(cell.source)
        if k in by_key:
            entry = dict(by_key[k], id=cell.get("id"), kind=cell.cell_type)
        else:
            entry = {"id": cell.get("id"), "key": k, "kind": cell.cell_type, "en": cell.source, "zh": None}
            old = by_id.get(cell.get("id"))
            if old is not None and old.get("zh"):
                entry["zh_before_change"] = old["zh"]
                entry["en_before_change"] = old["en"]
            added += 1
        fresh.append(entry)
    save_translations(lesson, fresh)
    return added


def build(lesson: Path) -> Path:
    """Write ``notebooks/zh/<lesson>`` from the English notebook and its translations.

    Outputs of cells whose source did not change are kept from the previous
    Chinese build, so rebuilding is cheap; ``make notebooks`` re-executes all.
    """
    nb = nbformat.read(lesson, as_version=4)
    by_key = {e["key"]: e for e in load_translations(lesson)}
    out_path = ZH_NOTEBOOKS / lesson.name
    previous = {}
    if out_path.exists():
        old = nbformat.read(out_path, as_version=4)
        previous = {c.get("id"): c for c in old.cells}
    cells = []
    for cell in nb.cells:
        cell = nbformat.from_dict(json.loads(json.dumps(cell)))
        entry = by_key.get(key(cell.source)) if needs_translation(cell) else None
        if entry and entry.get("zh"):
            cell.source = entry["zh"]
        _keep_outputs(cell, previous.get(cell.get("id")))
        cells.append(cell)
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    language = nbformat.v4.new_code_cell(LANGUAGE_CELL, id=LANGUAGE_CELL_ID)
    language.metadata["slideshow"] = {"slide_type": "skip"}  # set-up, never a slide (scripts/slides.py)
    _keep_outputs(language, previous.get(LANGUAGE_CELL_ID))
    cells.insert(first_code, language)
    nb.cells = cells
    nb.metadata["language_info"] = nb.metadata.get("language_info", {})
    nb.metadata["aigc_edition"] = {"language": "zh-CN", "source": f"../{lesson.name}"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if (NOTEBOOKS / "rise.css").exists():  # RISE's slide style, next to the lessons
        (ZH_NOTEBOOKS / "rise.css").write_text((NOTEBOOKS / "rise.css").read_text())
    nbformat.write(nb, out_path)
    return out_path


def _keep_outputs(cell, old) -> None:
    if cell.cell_type != "code":
        return
    if old is not None and old.source == cell.source:
        cell.outputs, cell.execution_count = old.outputs, old.execution_count
    else:
        cell.outputs, cell.execution_count = [], None


def expected_sources(lesson: Path) -> list[str]:
    """The Chinese notebook's cell sources as a build would write them (for the sync test)."""
    nb = nbformat.read(lesson, as_version=4)
    by_key = {e["key"]: e for e in load_translations(lesson)}
    sources = []
    for cell in nb.cells:
        entry = by_key.get(key(cell.source)) if needs_translation(cell) else None
        sources.append(entry["zh"] if entry and entry.get("zh") else cell.source)
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    sources.insert(first_code, LANGUAGE_CELL)
    return sources



def status(lesson: Path) -> dict:
    nb = nbformat.read(lesson, as_version=4)
    by_key = {e["key"]: e for e in load_translations(lesson)}
    wanted = [c for c in nb.cells if needs_translation(c)]
    done = [by_key[key(c.source)] for c in wanted if by_key.get(key(c.source), {}).get("zh")]
    zh_path = ZH_NOTEBOOKS / lesson.name
    chars = 0
    if zh_path.exists():
        chars = sum(len(CJK.findall(c.source)) for c in nbformat.read(zh_path, as_version=4).cells)
    return {"lesson": lesson.name, "cells": len(wanted), "translated": len(done),
            "share": len(done) / max(len(wanted), 1), "chinese_characters": chars}


def _select(args: list[str]) -> list[Path]:
    chosen = lessons()
    return [p for p in chosen if any(p.name.startswith(a) for a in args)] if args else chosen


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("check", [])
    if command == "check":
        problems = [p for lesson in _select(args) for p in check_lesson(lesson)]
        print("\n".join(problems) or "every cell of every selected lesson has a faithful, current translation")
        return 1 if problems else 0
    if command == "update":
        for lesson in _select(args):
            print(f"{lesson.name}: {update(lesson)} entries to translate")
        return 0
    if command == "build":
        for lesson in _select(args):
            print(f"wrote {build(lesson).relative_to(ROOT)}")
        return 0
    if command == "status":
        for lesson in _select(args):
            s = status(lesson)
            print(f"{s['lesson']:<28} {s['translated']:>3}/{s['cells']:<3} cells ({s['share']:.0%}), "
                  f"{s['chinese_characters']:,} Chinese characters")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
