"""The Tang-poem corpus, the character tokenizer and the poem metrics (lesson 05), on hand-made poems."""
from __future__ import annotations

import math

import pytest
import torch

from aigc_course.data.corpora import poems, poems_of_line_length, verse_lines
from aigc_course.data.tokenizers import ByteTokenizer, CharTokenizer, tokenizer_for
from aigc_course.metrics.poems import (first_poem, form_share, is_well_formed, line_length_share, nats_per_char,
                                       poem_form, poem_prompts, sample_poems, structure_share, token_char_counts)
from aigc_course.models.gpt import GPT, GPTConfig

JINGYESI = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。"                       # 4 x 5: 五言绝句
HUANGHELOU = "故人西辞黄鹤楼，烟花三月下扬州。\n孤帆远影碧山尽，唯见长江天际流。"      # 4 x 7: 七言绝句
CHUNWANG = ("国破山河在，城春草木深。\n感时花溅泪，恨别鸟惊心。\n"
            "烽火连三月，家书抵万金。\n白头搔更短，浑欲不胜簪。")                       # 8 x 5: 五言律诗
ONE_LONG = "春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少啊。"                      # lines 5, 5, 5, 6
ALL_SIX = "一二三四五六，一二三四五六。\n一二三四五六，一二三四五六。"                  # 4 x 6: no form
THREE = "床前明月光，疑是地上霜。\n举头望明月，"                                      # 3 lines (cut off)


def test_verse_lines_split_at_verse_punctuation_and_skip_titles():
    assert verse_lines(JINGYESI) == ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"]
    titled = "《静夜思》\n作者：李白\n" + JINGYESI  # title and author rows carry no verse punctuation
    assert verse_lines(titled) == verse_lines(JINGYESI)
    assert verse_lines("床前明月光，疑是地") == ["床前明月光", "疑是地"]  # an unfinished line still counts
    assert verse_lines("") == []


def test_well_formed_means_4_or_8_equal_lines_of_5_or_7():
    assert is_well_formed(JINGYESI) and is_well_formed(HUANGHELOU) and is_well_formed(CHUNWANG)
    assert not is_well_formed(ONE_LONG)   # one line of 6
    assert not is_well_formed(ALL_SIX)    # equal, but 6 is no form
    assert not is_well_formed(THREE)      # 3 lines
    assert not is_well_formed(JINGYESI + "\n" + JINGYESI + "\n" + JINGYESI)  # 12 lines


def test_poem_form_is_the_most_common_line_length():
    assert poem_form(verse_lines(HUANGHELOU)) == 7
    assert poem_form(verse_lines(ONE_LONG)) == 5
    assert poem_form(verse_lines(ALL_SIX)) is None
    assert poem_form(["一二三四五", "一二三四五六七"]) == 5  # a tie goes to the length seen first
    assert poem_form([]) is None


def test_line_length_and_structure_shares_on_hand_counted_poems():
    # JINGYESI 4 of 4 lines right, ONE_LONG 3 of 4 (form 5), ALL_SIX 0 of 4 (no form): 7 of 12
    assert line_length_share([JINGYESI, ONE_LONG, ALL_SIX]) == pytest.approx(7 / 12)
    assert structure_share([JINGYESI, ONE_LONG, HUANGHELOU]) == pytest.approx(2 / 3)
    assert form_share([JINGYESI, HUANGHELOU, CHUNWANG, ALL_SIX], 7) == pytest.approx(1 / 4)
    assert form_share([JINGYESI, HUANGHELOU, CHUNWANG, ALL_SIX], 5) == pytest.approx(2 / 4)
    assert line_length_share([]) == 0.0 and structure_share([]) == 0.0 and form_share([], 5) == 0.0


def test_poems_and_the_filter_by_line_length():
    text = "\n\n".join([JINGYESI, HUANGHELOU, CHUNWANG, ONE_LONG]) + "\n"
    assert poems(text) == [JINGYESI, HUANGHELOU, CHUNWANG, ONE_LONG]
    assert poems(poems_of_line_length(text, 7)) == [HUANGHELOU]
    assert poems(poems_of_line_length(text, 5)) == [JINGYESI, CHUNWANG]  # ONE_LONG has a 6-character line
    assert poems_of_line_length(text, 6) == ""


def test_first_poem_stops_at_the_first_blank_line():
    assert first_poem("\n\n" + JINGYESI + "\n\n" + HUANGHELOU) == JINGYESI
    assert first_poem(THREE) == THREE


def test_char_tokenizer_round_trip_unknown_and_card():
    tok = CharTokenizer.from_text(JINGYESI + "\n")
    assert tok.vocab_size == len(set(JINGYESI + "\n")) + 1  # + the unknown mark, id 0
    assert tok.decode(tok.encode(JINGYESI)) == JINGYESI
    assert tok.encode("月亮") == [tok.index["月"], 0]       # 亮 is not in the alphabet
    assert tok.decode(tok.encode("月亮")) == "月\ufffd"
    assert list(tok.chars[1:]) == sorted(set(JINGYESI + "\n"))  # code-point order: reproducible
    card = {"tokenizer": {"kind": "chars", "chars": tok.chars[1:]}}
    assert tokenizer_for(card).encode(HUANGHELOU) == tok.encode(HUANGHELOU)
    with pytest.raises(ValueError, match="each character once"):
        CharTokenizer("月月")
    with pytest.raises(ValueError, match="unknown mark"):
        CharTokenizer("月\ufffd")


def test_token_char_counts_count_the_characters_a_token_starts():
    text = "床前a\n"  # 3 + 3 + 1 + 1 bytes, 4 characters
    ids = ByteTokenizer().encode(text)
    assert token_char_counts(ByteTokenizer(), 256)[ids].sum().item() == 4
    assert token_char_counts(ByteTokenizer(), 256)[[0xE5, 0x80, 0xBF, 0x41]].tolist() == [1, 0, 0, 1]
    tok = CharTokenizer.from_text(text)
    assert token_char_counts(tok, tok.vocab_size).tolist() == [1] * tok.vocab_size


def uniform_gpt(vocab: int, block: int) -> GPT:
    """A GPT whose logits are all 0: every next token has probability 1/vocab."""
    model = GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=1, n_head=1, n_embd=8))
    for p in model.parameters():
        p.data.zero_()
    return model


def test_nats_per_char_of_uniform_models():
    text = "床前明月光疑是地上霜"  # 10 characters, 30 bytes
    tok = CharTokenizer.from_text(text)
    assert nats_per_char(uniform_gpt(tok.vocab_size, 4), tok, text) == pytest.approx(math.log(tok.vocab_size))
    # bytes, context 9: 3 windows predict bytes 1..27, which start characters at bytes 3, 6, ..., 27 (9 of them):
    # 27 predictions of ln 256 each over 9 characters
    assert nats_per_char(uniform_gpt(256, 9), ByteTokenizer(), text) == pytest.approx(27 * math.log(256) / 9)
    with pytest.raises(ValueError, match="at least two tokens"):
        nats_per_char(uniform_gpt(256, 9), ByteTokenizer(), "")


def test_sample_poems_one_per_prompt_reproducible():
    text = "\n\n".join([JINGYESI, HUANGHELOU, CHUNWANG]) + "\n"
    tok = CharTokenizer.from_text(text)
    model = uniform_gpt(tok.vocab_size, 32)
    prompts = poem_prompts(text, 2) + ["\n\n国破"]  # two lengths of prompt: generated in two groups
    assert prompts[:2] == ["\n\n床", "\n\n故"]
    first = sample_poems(model, tok, prompts, 10, seed=3)
    assert len(first) == 3 and [p[:1] for p in first] == ["床", "故", "国"]
    assert first[2].startswith("国破")
    assert sample_poems(model, tok, prompts, 10, seed=3) == first
    with pytest.raises(ValueError, match="at least one prompt"):
        sample_poems(model, tok, [], 10)


def test_the_shipped_poem_corpus_and_its_split():
    from aigc_course.recipes.gpt import split_corpus

    train, val = split_corpus("tang_poems")
    all_poems = poems(train) + poems(val)
    assert len(all_poems) == 10_698                          # what scripts/make_tang_poems.py printed
    assert 1_000 <= len(poems(val)) <= 1_100                  # whole poems, about the last 10%
    assert not set(poems(train)) & set(poems(val))
    assert all(map(is_well_formed, all_poems[::50]))          # every poem is a quatrain or regulated verse
    assert len(set(train + val) - set("，。？！\n")) <= 2_000  # the 2,000-character alphabet
    qiyan_train, qiyan_val = split_corpus("tang_qiyan")
    assert poems(qiyan_val) == [p for p in poems(val) if len(verse_lines(p)[0]) == 7]
    assert set(poems(qiyan_train)) <= set(poems(train))


def test_sampling_explorer_with_the_character_tokenizer_and_chinese_examples():
    from aigc_course.views.widgets import SamplingExplorer, token_label
    from aigc_course.views.widgets.gpt import POEM_PROMPTS

    tok = CharTokenizer.from_text(JINGYESI + "春江\n")
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16))
    explorer = SamplingExplorer(model, tok, prompt="床前", seed=0, examples=POEM_PROMPTS)
    assert explorer.context_ids() == [tok.index["床"], tok.index["前"]]
    assert explorer.examples.options[3] == ("江", "\n\n江")  # the button shows the character
    explorer.examples.value = "\n\n江"  # picking an example replaces the prompt and starts over
    assert explorer.prompt.value == "\n\n江" and explorer.context_ids() == tok.encode("\n\n江")
    explorer.step(3)
    assert len(explorer.context_ids()) == 3 + 3
    assert token_label(tok, tok.index["月"]) == "月" and token_label(tok, tok.index["\n"]) == "⏎"
    assert not hasattr(SamplingExplorer(model, tok, prompt="春"), "examples")  # no menu unless asked


def test_boundary_starts_and_aligned_windows():
    from aigc_course.data.corpora import boundary_starts, random_batch

    text = JINGYESI + "\n\n" + HUANGHELOU + "\n\n" + CHUNWANG + "\n"
    tok = CharTokenizer.from_text(text)
    ids = torch.tensor(tok.encode(text))
    first, second = len(JINGYESI), len(JINGYESI) + 2 + len(HUANGHELOU)  # where each blank line begins
    assert boundary_starts(ids, tok.encode("\n\n")).tolist() == [first, second]
    assert boundary_starts(ids, []).tolist() == []
    x, y = random_batch(ids, 6, 8, torch.Generator().manual_seed(0), starts=torch.tensor([first, second]),
                        aligned=0.5)
    heads = {tok.decode(row[:3]) for row in x[:4]}
    assert heads <= {"\n\n故", "\n\n国"}                      # the first half starts at a poem
    assert torch.equal(x[:, 1:], y[:, :-1])
    # aligned=0 draws exactly the windows it always drew: torch.randint over all start positions
    plain, _ = random_batch(ids, 6, 8, torch.Generator().manual_seed(1))
    expected = torch.randint(len(ids) - 7, (8,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(plain, torch.stack([ids[s:s + 6] for s in expected]))
    with pytest.raises(ValueError, match="share of the batch"):
        random_batch(ids, 6, 8, starts=torch.tensor([first]), aligned=1.5)
    with pytest.raises(ValueError, match="no usable aligned start"):
        random_batch(ids, 6, 8, starts=torch.tensor([len(ids) - 2]), aligned=1.0)


def test_the_shipped_poem_models_write_well_formed_poems_as_their_cards_say():
    from aigc_course.metrics.poems import poem_report
    from aigc_course.models.hub import load
    from aigc_course.recipes.gpt import POEM_SAMPLING, split_corpus

    held_out = split_corpus("tang_poems")[1]
    model, card = load("poem_char")
    tok = tokenizer_for(card)
    assert tok.vocab_size == model.config.vocab_size
    report = poem_report(model, tok, held_out, poem_prompts(held_out, POEM_SAMPLING["n"]),
                         POEM_SAMPLING["max_new_tokens"], temperature=POEM_SAMPLING["temperature"],
                         seed=POEM_SAMPLING["seed"])
    metrics = card["metrics"]
    assert report["nats_per_char"] == pytest.approx(metrics["val_nats_per_char_tang_poems"], abs=2e-3)
    assert report["well_formed"] == pytest.approx(metrics["poems_tang_poems_well_formed"], abs=0.05)
    assert report["well_formed"] >= 0.6 and report["line_length_ok"] >= 0.85  # most poems have the form
    assert report["nats_per_char"] < math.log(tok.vocab_size) - 2                # far better than a uniform guess
    lora = load("poem_qiyan_lora")[1]["metrics"]  # the adapter moves the form to 7-character lines
    assert lora["base_poems_tang_qiyan_qiyan"] <= 0.5 and lora["poems_tang_qiyan_qiyan"] >= 0.9
    assert lora["val_nats_per_char_tang_qiyan"] < lora["base_val_nats_per_char_tang_qiyan"]


def test_cli_trains_the_poem_adapter_and_generates_chinese(tmp_path, capsys):
    from aigc_course.__main__ import main

    out = tmp_path / "qiyan"
    assert main(["train", "gpt", "--preset", "poem_qiyan_lora", "--iters", "2", "--out", str(out)]) == 0
    from aigc_course.core.checkpoints import read_card

    card = read_card(out)
    assert card["base"] == "poem_char" and card["tokenizer"]["kind"] == "chars"
    capsys.readouterr()
    assert main(["generate", "--checkpoint", str(out), "--prompt", "\n\n春", "--max-new-tokens", "30",
                 "--seed", "0"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("\n\n春") and "\ufffd" not in text  # characters, never broken bytes
