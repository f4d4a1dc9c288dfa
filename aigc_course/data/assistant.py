"""Lesson 09's synthetic data: arithmetic, rule inference, a chat template, instructions and preferences.

Everything here is *generated* from a seed, so no data set has to be shipped:

* :func:`addition` writes ``"123+456=0579"`` (or, with a scratchpad, the column sums with their carries
  first: ``"123+456=9c0,7c0,5c0;0579"``); :func:`is_held_out` keeps about 1 pair in 50 out of training for testing.
* :func:`rule_episode` writes an in-context learning episode: a hidden rule (reverse the word, or shift every letter) shown on
  ``shots`` examples, then a query: ``"abc>cba|dfe>efd|ghb>"`` -> ``"bhg"``.
* :data:`MARKERS` and :func:`format_chat` are the chat template (对话模板): one token marks the start of the
  system, user and assistant turns and one the end of a turn (like ChatML's ``<|im_start|>``);
  :func:`assistant_mask` says which tokens are the assistant's, the only ones an instruction-tuned model
  is trained to predict.
* :func:`instructions` builds the instruction set (指令数据): arithmetic word problems in English and Chinese
  and questions about the course's glossary (a snapshot of ``translations/terms.json``), some with a retrieved line of
  context; :func:`preference_pairs` builds (prompt, chosen, rejected) triples for DPO.
* :func:`lesson_lines` reads the course's own lessons (their Markdown) as lines to retrieve from.
"""
from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- arithmetic


def is_held_out(a: int, b: int) -> bool:
    """About 2% of the (a, b) pairs, fixed by a hash, are never trained on: the test pairs."""
    return (a * 7919 + b * 104729) % 53 == 0


def random_pair(rng: random.Random, digits: int, held_out: bool = False) -> tuple[int, int]:
    """Two numbers of at most ``digits`` digits, from the training pairs (or from the held-out ones)."""
    while True:
        a, b = rng.randrange(10 ** digits), rng.randrange(10 ** digits)
        if is_held_out(a, b) == held_out:
            return a, b


def scratchpad(a: int, b: int, digits: int) -> str:
    """The column sums from the right, each digit with the carry it passes on: 58+67 -> ``"5c1,2c1"``.

    ``"5c1"`` reads "8 + 7 = 15: write 5, carry 1". A model that writes these
    first has to do one column (two digits and a carry) per step instead of
    the whole sum at once: chain-of-thought (思维链) in miniature.
    """
    steps, carry = [], 0
    for i in range(digits):
        total = a // 10 ** i % 10 + b // 10 ** i % 10 + carry
        carry = total // 10
        steps.append(f"{total % 10}c{carry}")
    return ",".join(steps)


def addition(a: int, b: int, digits: int, scratch: bool = False, reverse: bool = False) -> tuple[str, str]:
    """(prompt, answer) of one sum, numbers zero-padded to a fixed width: ``("012+345=", "0357")``.

    A fixed width puts every digit at the same position in every example (so a
    batch of prompts has one length), the way Nogueira et al. (2021) and many
    grokking studies format arithmetic. With ``scratch`` the answer starts with
    the column steps: ``"7c0,5c0,3c0;0357"``. With ``reverse`` the answer is
    written from its last digit to its first (``"7530"``), the order in which
    the column sums are found; Lee et al. (2023) measured that this order
    makes addition far easier for a small transformer to learn.
    """
    prompt = f"{a:0{digits}d}+{b:0{digits}d}="
    answer = f"{a + b:0{digits + 1}d}"
    answer = answer[::-1] if reverse else answer
    return prompt, (f"{scratchpad(a, b, digits)};{answer}" if scratch else answer)


def final_answer(text: str) -> str:
    """What a completion answers: the text after the scratchpad (after ``;``), up to the end of the line."""
    line = text.split("\n")[0]
    return line.split(";")[-1].strip()


# --------------------------------------------------------------------------- in-context rule inference

LETTERS = "abcdefgh"
#: The hidden rules of an episode: each maps a 3-letter word to another.
RULES = {
    "reverse": lambda w: w[::-1],
    "shift": lambda w: "".join(LETTERS[(LETTERS.index(c) + 1) % len(LETTERS)] for c in w),
}


def rule_episode(rng: random.Random, shots: int, rule: str | None = None) -> tuple[str, str, str]:
    """(prompt, answer, rule): ``shots`` examples of a hidden rule, then a query word.

    ``"abc>cba|dfe>efd|ghb>"`` -> ``"bhg"``: the model has to infer "reverse"
    from the examples in its prompt (in-context learning, 上下文学习). With
    ``shots=0`` it sees the query alone and can only guess the rule.
    """
    rule = rule or rng.choice(sorted(RULES))
    words = ["".join(rng.choice(LETTERS) for _ in range(3)) for _ in range(shots + 1)]
    shown = "".join(f"{w}>{RULES[rule](w)}|" for w in words[:-1])
    return f"{shown}{words[-1]}>", RULES[rule](words[-1]), rule


def mixture_line(rng: random.Random, digits: int = 2, max_shots: int = 4, rule_share: float = 0.5) -> str:
    """One line of a task mixture: a sum, or with probability ``rule_share`` a rule episode (0 to ``max_shots``
    shots)."""
    if rng.random() >= rule_share:
        prompt, answer = addition(*random_pair(rng, digits), digits, reverse=True)
    else:
        prompt, answer, _ = rule_episode(rng, rng.randint(0, max_shots))
    return prompt + answer


# --------------------------------------------------------------------------- the chat template

#: One character (so one token) per marker: the start of a system, user or assistant turn, and a turn's end.
MARKERS = {"system": "Ⓢ", "user": "Ⓤ", "assistant": "Ⓐ", "end": "Ⓔ"}
SYSTEM_PROMPTS = ("Be brief.", "简答。")


def format_chat(messages: list[dict], add_generation_prompt: bool = False) -> str:
    """A conversation as the model reads it: ``Ⓢ...ⒺⓊ...ⒺⒶ...Ⓔ``.

    ``messages`` is a list of ``{"role": "system" | "user" | "assistant", "content": ...}``;
    ``add_generation_prompt`` ends the text with the assistant marker, so the
    model's next tokens are its reply.
    """
    parts = []
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant"):
            raise ValueError(f"a message's role is system, user or assistant, got {m.get('role')!r}")
        if any(mark in m["content"] for mark in MARKERS.values()):
            raise ValueError("a message may not contain the template's markers " + " ".join(MARKERS.values()))
        parts.append(MARKERS[m["role"]] + m["content"] + MARKERS["end"])
    return "".join(parts) + (MARKERS["assistant"] if add_generation_prompt else "")


def assistant_mask(ids: torch.Tensor, assistant_id: int, end_id: int) -> torch.Tensor:
    """Boolean mask (same shape as ``ids``): True on the tokens of the assistant's turns, their end marker included.

    A token is the assistant's when the latest marker before it is the
    assistant marker; the marker itself is not (the user's text decides that
    a reply starts, not the model), the end marker that closes the reply is
    (the model must learn to stop). Works on (T,) or (B, T).
    """
    ids = torch.as_tensor(ids)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    inside = torch.zeros(ids.shape[:-1], dtype=torch.bool)
    for t in range(ids.shape[-1]):
        token = ids[..., t]
        mask[..., t] = inside
        inside = torch.where(token == assistant_id, torch.ones_like(inside),
                             torch.where(token == end_id, torch.zeros_like(inside), inside))
    return mask


# --------------------------------------------------------------------------- the instruction set

WORD_PROBLEMS = {
    "en": ("What is {a} plus {b}?",
           "Tom has {a} apples and buys {b} more. How many apples does he have now?",
           "A shelf holds {a} books and {b} more arrive. How many books are there?",
           "Add {a} and {b}."),
    "zh": ("{a}加{b}等于多少？",
           "小明有{a}个苹果，又买了{b}个。他现在有几个苹果？",
           "书架上有{a}本书，又来了{b}本。一共有几本书？",
           "计算{a}与{b}的和。"),
}
#: The last phrasing of each language is never trained on: held-out instructions use it to test whether
#: instruction tuning taught the task or only the training sentences.
TRAINED_PROBLEMS = {lang: problems[:-1] for lang, problems in WORD_PROBLEMS.items()}
GLOSSARY_QUESTIONS = {"en": 'What is the Chinese for "{en}"?', "zh": "“{zh}”的英文是什么？"}
CHATTY = {"en": " Happy to help!", "zh": "，很高兴为你解答！"}


#: The course's bilingual term list as it was when the chat models were trained (a copy of
#: ``translations/terms.json``), so that later additions to the list change neither the models' alphabet
#: nor which terms are trained on.
TERMS_SNAPSHOT = "assistant/terms_snapshot.json"


@functools.cache
def glossary() -> tuple[tuple[str, str], ...]:
    """The course's bilingual terms (:data:`TERMS_SNAPSHOT`) that fit a short question, sorted."""
    from aigc_course.core.assets import asset_path

    terms = json.loads(asset_path(TERMS_SNAPSHOT).read_text(encoding="utf-8"))
    return tuple(sorted((en, zh) for en, zh in terms.items() if len(en) <= 24 and len(zh) <= 8 and "(" not in en and "|" not in zh))


def term_split(terms: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Terms by role, fixed by position: ``sft`` (pretrained on and asked about in instruction tuning),
    ``pretrain_only`` (pretrained on, never asked about: do instructions unlock them?) and ``unseen``
    (never in any training text: only retrieval can answer them)."""
    return {"sft": [t for i, t in enumerate(terms) if i % 5 in (0, 1, 2)],
            "pretrain_only": [t for i, t in enumerate(terms) if i % 5 == 3],
            "unseen": [t for i, t in enumerate(terms) if i % 5 == 4]}


@functools.cache
def glossary_split() -> dict[str, list[tuple[str, str]]]:
    """:func:`term_split` of :func:`glossary`, computed once (the data generators ask for it on every line)."""
    return term_split(list(glossary()))


def context_line(en: str, zh: str) -> str:
    """How a glossary row reads in the lessons (and so in a retrieved line): ``| diffusion model | 扩散模型 |``."""
    return f"| {en} | {zh} |"


@functools.cache
def _glossary_hanzi() -> tuple[str, ...]:
    return tuple(sorted({c for _, zh in glossary() for c in zh if "\u4e00" <= c <= "\u9fff"}))


def made_up_term(rng: random.Random) -> tuple[str, str]:
    """A term that exists nowhere: 1-2 words of random letters and 2-5 Chinese characters of the glossary.

    Asked about one of these with its glossary row in the context, a model can
    only answer by copying from the context, never from memory: this is how it
    learns to read what a retriever hands it.
    """
    hanzi = _glossary_hanzi()
    en = " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                  for _ in range(rng.randint(1, 2)))
    return en, "".join(rng.choice(hanzi) for _ in range(rng.randint(2, 5)))


def user_turn(question: str, context: str = "") -> str:
    """The user's message as the models read it: a retrieved ``context`` line (if any) before the question."""
    return (f"Context: {context}\n" if context else "") + question


@dataclass(frozen=True)
class Instruction:
    """One instruction with its right answer: ``kind`` is "math" or "glossary", ``lang`` "en" or "zh"."""

    kind: str
    lang: str
    question: str
    answer: str
    context: str = ""   # a retrieved line the question may be answered from ("" without retrieval)

    def messages(self, system: bool = True) -> list[dict]:
        head = [{"role": "system", "content": SYSTEM_PROMPTS[self.lang == "zh"]}] if system else []
        return head + [{"role": "user", "content": user_turn(self.question, self.context)}]

    def prompt(self) -> str:
        """The chat text up to and including the assistant marker: what the model continues."""
        return format_chat(self.messages(), add_generation_prompt=True)


def math_answer(a: int, b: int) -> str:
    """The assistant's reply to a sum: the sum written out, ``"23+45=68"``, so that the reply is computed the
    way the base model learned sums in pretraining (``a+b=`` then the digits)."""
    return f"{a}+{b}={a + b}"


def math_instruction(rng: random.Random, held_out: bool = False) -> Instruction:
    """A word problem: a training pair in a trained phrasing, or (``held_out``) a held-out pair in any phrasing."""
    lang = rng.choice(("en", "zh"))
    a, b = random_pair(rng, 2, held_out)
    problems = WORD_PROBLEMS[lang] if held_out else TRAINED_PROBLEMS[lang]
    return Instruction("math", lang, rng.choice(problems).format(a=a, b=b), math_answer(a, b))


def glossary_instruction(rng: random.Random, term: tuple[str, str], context: bool = False) -> Instruction:
    en, zh = term
    lang = rng.choice(("en", "zh"))
    return Instruction("glossary", lang, GLOSSARY_QUESTIONS[lang].format(en=en, zh=zh), zh if lang == "en" else en,
                       context_line(en, zh) if context else "")


def instructions(n: int, seed: int, split: str = "train") -> list[Instruction]:
    """``n`` instructions. ``split`` "train": half word problems on training pairs, a third questions about
    the ``sft`` terms, the rest questions about made-up terms with their row as context (to be copied);
    "held_out": half word problems on held-out pairs (the held-out phrasing among them), half questions about
    the ``pretrain_only`` terms, without context."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split is 'train' or 'held_out', got {split!r}")
    rng = random.Random(seed)
    terms = glossary_split()
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.5:
            out.append(math_instruction(rng, held_out=split != "train"))
        elif split == "held_out":
            out.append(glossary_instruction(rng, rng.choice(terms["pretrain_only"])))
        elif roll < 0.85:
            out.append(glossary_instruction(rng, rng.choice(terms["sft"])))
        else:
            out.append(glossary_instruction(rng, made_up_term(rng), context=True))
    return out


def sft_text(inst: Instruction, rng: random.Random, chatty: float = 0.3) -> str:
    """A training conversation; a share ``chatty`` of the replies add a polite but useless tail (the habit
    preference tuning will remove)."""
    reply = inst.answer + (CHATTY[inst.lang] if rng.random() < chatty else "")
    return format_chat(inst.messages() + [{"role": "assistant", "content": reply}])


def wrong_answer(inst: Instruction, rng: random.Random) -> str:
    """A plausible wrong reply: the sum off by 1 or 10, or the translation of another ``sft`` term (never of a
    held-out term, so that preference tuning cannot learn to avoid the held-out answers themselves)."""
    if inst.kind == "math":
        a, b = (int(x) for x in inst.answer.split("=")[0].split("+"))
        return f"{a}+{b}={a + b + rng.choice((-10, -1, 1, 10))}"
    other = rng.choice([t for t in glossary_split()["sft"] if inst.answer not in t])
    return other[1] if inst.lang == "en" else other[0]


def preference_pairs(n: int, seed: int, split: str = "train") -> list[tuple[Instruction, str, str]]:
    """(instruction, chosen reply, rejected reply): half "short vs chatty" (the same right answer with the
    chatty tail), half "right vs wrong" (:func:`wrong_answer`)."""
    rng = random.Random(seed + 1)
    out = []
    for inst in instructions(n, seed, split):
        if rng.random() < 0.5:
            out.append((inst, inst.answer, inst.answer + CHATTY[inst.lang]))
        else:
            out.append((inst, inst.answer, wrong_answer(inst, rng)))
    return out


def pretraining_line(rng: random.Random) -> str:
    """One line of the base model's text: plain sentences, never a chat.

    Half are sums, mostly as ``a+b=c``; a third are facts about the ``sft`` and
    ``pretrain_only`` terms, each fact in five phrasings (Allen-Zhu & Li 2023
    found that facts seen in several phrasings are the ones instruction tuning can
    later get out of a model); the rest are glossary rows of made-up terms followed
    by a sentence that repeats them, which rewards copying from earlier in the line.
    """
    roll = rng.random()
    if roll < 0.5:
        a, b = random_pair(rng, 2)
        return rng.choice((f"{a}+{b}={a + b}",) * 3 + (f"{a} plus {b} is {a + b}.", f"{a}加{b}等于{a + b}。"))
    terms = glossary_split()
    if roll < 0.83:
        en, zh = rng.choice(terms["sft"] + terms["pretrain_only"])
        return rng.choice((f'The Chinese for "{en}" is {zh}.', f"“{zh}”的英文是 {en}。", context_line(en, zh),
                           f"{en} is called {zh} in Chinese.", f"{zh}（{en}）"))
    en, zh = made_up_term(rng)
    return rng.choice((f'{context_line(en, zh)} The Chinese for "{en}" is {zh}.',
                       f"{context_line(en, zh)} “{zh}”的英文是 {en}。"))


def chat_alphabet() -> str:
    """Every character the chat models may read or write, in code-point order: the tokenizer's alphabet."""
    chars = set("".join(MARKERS.values()) + "".join(SYSTEM_PROMPTS) + "".join(CHATTY.values()))
    chars |= set("".join(WORD_PROBLEMS["en"] + WORD_PROBLEMS["zh"]) + "".join(GLOSSARY_QUESTIONS.values()))
    chars |= {chr(i) for i in range(32, 127)} | set("\n“”。，？！、：；（）的英文是加等于一共个苹果又买了")
    for en, zh in glossary():
        chars |= set(en + zh)
    return "".join(sorted(chars - {"{", "}"}))


# --------------------------------------------------------------------------- the course's own text, to retrieve from


#: The retrieval corpus: every line of the English lessons' Markdown (lesson 09 left out), as it was when the
#: chat models were measured. Shipped so that retrieval works wherever the package does (a grader's sandbox
#: has no ``notebooks/``) and so that later edits to the lessons do not move the measurement.
LESSON_CORPUS = "assistant/lesson_corpus.json"


def read_lesson_lines(folder: Path, exclude: tuple[str, ...] = ("09_assistant",)) -> list[tuple[str, str]]:
    """(lesson, line) for every non-empty line of the Markdown cells of the lesson notebooks in ``folder``.

    Glossary tables give one row per line (``| deepfake | 深度伪造 |``), prose one paragraph per line.
    Lesson 09 itself is left out by default, so that the corpus does not change with the text that
    describes the measurement.
    """
    out = []
    for path in sorted(Path(folder).glob("[0-9]*.ipynb")):
        if path.stem in exclude:
            continue
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    line = line.strip()
                    if line and not re.fullmatch(r"\|?[-| :]+\|?", line):
                        out.append((path.stem, line))
    if not out:
        raise FileNotFoundError(f"no lesson notebooks found in {folder}: run from a checkout of the course")
    return out


def lesson_lines(notebooks: Path | None = None) -> list[tuple[str, str]]:
    """The retrieval corpus: the shipped snapshot (:data:`LESSON_CORPUS`), or with ``notebooks`` the lessons
    in that folder as they are now (:func:`read_lesson_lines`)."""
    if notebooks is not None:
        return read_lesson_lines(notebooks)
    from aigc_course.core.assets import asset_path

    return [tuple(row) for row in json.loads(asset_path(LESSON_CORPUS).read_text(encoding="utf-8"))]


def write_lesson_corpus(notebooks: Path = ROOT / "notebooks", out: Path = ROOT / "data" / LESSON_CORPUS) -> Path:
    """Snapshot the lessons' lines to ``out`` (``python -m aigc_course.data.assistant``)."""
    out.write_text(json.dumps(read_lesson_lines(notebooks), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return out


def chunks(lines: list[tuple[str, str]], size: int = 48) -> list[str]:
    """The lines cut into passages of at most ``size`` characters (at spaces where possible): what a small
    model's context window can take. Glossary rows are short and stay whole."""
    out = []
    for _, line in lines:
        while len(line) > size:
            cut = line.rfind(" ", size // 2, size)
            cut = cut if cut > 0 else size
            out.append(line[:cut])
            line = line[cut:].strip()
        if line:
            out.append(line)
    return out


def glossary_rows(lines: list[tuple[str, str]]) -> dict[str, str]:
    """English term -> Chinese, read from the glossary tables of the lessons' text (``| en | zh |`` rows)."""
    rows = {}
    for _, line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 2 and re.search(r"[\u4e00-\u9fff]", cells[1]) and not re.search(r"[\u4e00-\u9fff]", cells[0]):
            rows.setdefault(cells[0], cells[1])
    return rows


if __name__ == "__main__":
    from aigc_course.core import assets

    path = write_lesson_corpus()
    asset = assets.register(path, licence="MIT (this course)",
                            source="the Markdown lines of notebooks/0[0-8]*.ipynb (English)",
                            made_by="python -m aigc_course.data.assistant")
    print(f"wrote {asset.path}: {asset.size} bytes, sha256 {asset.sha256}")
