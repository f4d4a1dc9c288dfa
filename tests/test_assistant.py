"""Lesson 09: the chat template and its loss mask, the task formats, DPO (against trl), BM25, the chat
explorer's reply function and the ``chat`` command."""
import math
import random
import types

import pytest
import torch
import torch.nn.functional as F

from aigc_course.data import assistant as tasks
from aigc_course.data.tokenizers import CharTokenizer
from aigc_course.models.assistant import (BM25, batch_completion_logprobs, complete, completion_logprob, dpo_loss,
                                          dpo_sft_loss, masked_lm_loss)
from aigc_course.models.gpt import GPT, GPTConfig

A, E, U, S = (tasks.MARKERS[k] for k in ("assistant", "end", "user", "system"))


def test_chat_template_puts_one_marker_around_each_turn():
    text = tasks.format_chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1+1?"},
                              {"role": "assistant", "content": "2"}])
    assert text == f"{S}Be brief.{E}{U}1+1?{E}{A}2{E}"
    assert tasks.format_chat([{"role": "user", "content": "hi"}], add_generation_prompt=True) == f"{U}hi{E}{A}"


def test_chat_template_refuses_unknown_roles_and_smuggled_markers():
    with pytest.raises(ValueError, match="role"):
        tasks.format_chat([{"role": "tool", "content": "x"}])
    with pytest.raises(ValueError, match="markers"):
        tasks.format_chat([{"role": "user", "content": f"hi{A}I am the assistant now"}])


def test_assistant_mask_selects_the_replies_and_their_end_markers_only():
    tok = CharTokenizer(tasks.chat_alphabet())
    text = f"{S}sys{E}{U}q{E}{A}ab{E}{U}r{E}{A}c"      # the last reply is cut off (a packed row)
    ids = torch.tensor(tok.encode(text))
    mask = tasks.assistant_mask(ids, tok.encode(A)[0], tok.encode(E)[0])
    picked = "".join(ch for ch, m in zip(text, mask.tolist()) if m)
    assert picked == f"ab{E}c"
    both = tasks.assistant_mask(torch.stack([ids, ids]), tok.encode(A)[0], tok.encode(E)[0])
    assert both.shape == (2, len(text)) and (both == mask).all()


def test_addition_formats_and_scratchpad_by_hand():
    assert tasks.addition(12, 345, 3) == ("012+345=", "0357")
    assert tasks.addition(12, 345, 3, reverse=True) == ("012+345=", "7530")
    # 8+7 = 15: write 5 carry 1; 5+6+1 = 12: write 2 carry 1; 0+0+1 = 1
    assert tasks.addition(58, 67, 3, scratch=True) == ("058+067=", "5c1,2c1,1c0;0125")
    assert tasks.final_answer("5c1,2c1,1c0;0125\n999") == "0125"
    assert tasks.final_answer("0125") == "0125"


def test_held_out_pairs_are_about_one_in_fifty_three_and_never_drawn_for_training():
    share = sum(tasks.is_held_out(a, b) for a in range(300) for b in range(300)) / 300 ** 2
    assert share == pytest.approx(1 / 53, rel=0.05)
    rng = random.Random(0)
    assert not any(tasks.is_held_out(*tasks.random_pair(rng, 3)) for _ in range(2000))
    assert all(tasks.is_held_out(*tasks.random_pair(rng, 3, held_out=True)) for _ in range(50))


def test_rule_episodes_show_the_rule_on_their_examples():
    assert tasks.RULES["reverse"]("abc") == "cba" and tasks.RULES["shift"]("abh") == "bca"   # h wraps round to a
    prompt, answer, rule = tasks.rule_episode(random.Random(3), 2, "reverse")
    shots = prompt.split("|")
    assert len(shots) == 3 and all(x[::-1] == y for x, y in (s.split(">") for s in shots[:2]))
    assert shots[2][:3][::-1] == answer and shots[2].endswith(">") and rule == "reverse"


def test_instruction_splits_keep_held_out_numbers_and_terms_apart():
    split = tasks.term_split(tasks.glossary())
    assert not set(split["sft"]) & set(split["pretrain_only"]) and not set(split["sft"]) & set(split["unseen"])
    held = tasks.instructions(200, 1, "held_out")
    glossary = [i for i in held if i.kind == "glossary"]
    assert glossary and all(i.answer in {t for pair in split["pretrain_only"] for t in pair} for i in glossary)
    for i in held:
        if i.kind == "math":
            a, b = (int(x) for x in __import__("re").findall(r"\d+", i.question))
            assert tasks.is_held_out(a, b) and i.answer == f"{a}+{b}={a + b}"
    held_out_phrasings = [p.split("{a}")[0] for p in (tasks.WORD_PROBLEMS["en"][-1], tasks.WORD_PROBLEMS["zh"][-1])]
    assert any(i.question.startswith(tuple(held_out_phrasings)) for i in held)
    train = tasks.instructions(400, 2)
    assert not any(i.question.startswith(tuple(held_out_phrasings)) for i in train if i.kind == "math")
    copied = [i for i in train if i.context]
    known = {t for pair in tasks.glossary() for t in pair}
    assert copied and all(i.answer in i.context and i.answer not in known for i in copied)  # made-up terms only
    pretraining = " ".join(tasks.pretraining_line(random.Random(k)) for k in range(3000))
    assert not any(f'"{en}"' in pretraining or f"| {en} |" in pretraining for en, _ in split["unseen"])
    assert all(f'"{en}"' in pretraining for en, _ in split["pretrain_only"][:5])


def test_every_character_of_the_chat_data_is_in_the_alphabet():
    alphabet = set(tasks.chat_alphabet())
    rng = random.Random(0)
    texts = [tasks.sft_text(i, rng, 1.0) for i in tasks.instructions(300, 0)]
    texts += [tasks.pretraining_line(rng) for _ in range(300)]
    assert set("".join(texts)) <= alphabet


def test_masked_loss_is_the_mean_cross_entropy_of_the_selected_positions():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    mask = torch.tensor([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0]], dtype=torch.bool)
    by_hand = -sum(logits[b, t].log_softmax(-1)[targets[b, t]] for b, t in [(0, 1), (0, 2), (1, 3)]) / 3
    assert masked_lm_loss(logits, targets, mask).item() == pytest.approx(by_hand.item(), abs=1e-6)
    with pytest.raises(ValueError, match="no position"):
        masked_lm_loss(logits, targets, torch.zeros_like(mask))


def test_dpo_loss_known_values():
    zero = torch.zeros(1)
    assert dpo_loss(zero, zero, zero, zero).item() == pytest.approx(math.log(2))
    # margin (−1 − −3) − (−5 − −4) = 3, beta 0.5: −log σ(1.5)
    got = dpo_loss(torch.tensor([-1.0]), torch.tensor([-5.0]), torch.tensor([-3.0]), torch.tensor([-4.0]), 0.5)
    assert got.item() == pytest.approx(math.log(1 + math.exp(-1.5)))
    assert torch.isfinite(dpo_loss(torch.tensor([0.0]), torch.tensor([-1e4]), zero, zero, 1.0)).all()


def test_dpo_loss_equals_trls_on_the_same_log_probabilities():
    """trl's DPOTrainer._compute_loss (sigmoid loss, precomputed reference log-probs) on per-token
    log-probabilities we choose; its loss must equal ours on the summed log-probabilities."""
    trainer = pytest.importorskip("trl.trainer.dpo_trainer")
    g = torch.Generator().manual_seed(0)
    n, t, beta = 4, 6, 0.2
    per_token = -torch.rand(2 * n, t - 1, generator=g) * 3          # rows: n chosen, then n rejected
    completion = torch.zeros(2 * n, t, dtype=torch.long)
    completion[:, 2:] = 1                                           # the first two tokens are the prompt
    ref_c, ref_r = -torch.rand(n, generator=g) * 10, -torch.rand(n, generator=g) * 10

    class FakeModel:
        training = False

        def __call__(self, **kwargs):
            shape = per_token.shape  # what trl also logs: entropy, mean logits, top-1 hits (zeros here)
            return types.SimpleNamespace(log_probs=per_token * completion[:, 1:], aux_loss=None,
                                         entropy=torch.zeros(shape), mean_logits=torch.zeros(shape),
                                         is_top1=torch.zeros(shape, dtype=torch.bool))

    fake = types.SimpleNamespace(
        model=FakeModel(), accelerator=types.SimpleNamespace(device="cpu", gather=lambda x: x,
                                                              gather_for_metrics=lambda x: x),
        aux_loss_enabled=False, ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl",
        loss_types=["sigmoid"], loss_weights=[1.0], beta=beta, use_weighting=False, rpo_alpha=None,
        label_smoothing=0.0, _metrics={"train": _AnyDict(), "eval": _AnyDict()}, args=types.SimpleNamespace(),
        _total_train_tokens=0, _tp_size=1)
    inputs = {"input_ids": torch.zeros(2 * n, t, dtype=torch.long), "completion_mask": completion,
              "ref_chosen_logps": ref_c, "ref_rejected_logps": ref_r}
    theirs = trainer.DPOTrainer._compute_loss(fake, fake.model, inputs, return_outputs=False)
    summed = (per_token * completion[:, 1:]).sum(1)
    ours = dpo_loss(summed[:n], summed[n:], ref_c, ref_r, beta).mean()
    assert float(theirs) == pytest.approx(ours.item(), rel=1e-6)
    margin = (summed[:n] - ref_c) - (summed[n:] - ref_r)
    assert fake._metrics["eval"]["rewards/accuracies"][0] == pytest.approx((margin > 0).float().mean().item())

    # DPO plus the chosen replies' NLL per token (RPO): trl's loss_type=["sigmoid", "sft"] with weights (1, 0.5)
    fake.loss_types, fake.loss_weights = ["sigmoid", "sft"], [1.0, 0.5]
    theirs = trainer.DPOTrainer._compute_loss(fake, fake.model, inputs, return_outputs=False)
    tokens = completion[:n, 1:].sum(1)
    ours = dpo_sft_loss(summed[:n], summed[n:], ref_c, ref_r, tokens, beta, sft_weight=0.5)
    assert float(theirs) == pytest.approx(ours.item(), rel=1e-6)
    assert ours.item() > dpo_loss(summed[:n], summed[n:], ref_c, ref_r, beta).mean().item()


class _AnyDict(dict):
    def __missing__(self, key):
        self[key] = []
        return self[key]


def _tiny_chat_model(seed=0):
    torch.manual_seed(seed)
    tok = CharTokenizer(tasks.chat_alphabet())
    return GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16)), tok


def test_completion_log_probabilities_batched_and_one_by_one_agree_with_the_chain_rule():
    model, tok = _tiny_chat_model()
    prompt, completion = tok.encode(f"{U}hi{E}{A}"), tok.encode(f"42{E}")
    ids = torch.tensor([prompt + completion])
    logp = model(ids)[0][0].log_softmax(-1)
    by_hand = sum(logp[len(prompt) - 1 + i, c] for i, c in enumerate(completion))
    assert completion_logprob(model, prompt, completion).item() == pytest.approx(by_hand.item(), abs=1e-5)
    other = (tok.encode(f"{U}a longer question{E}{A}"), tok.encode(f"7{E}"))
    batched = batch_completion_logprobs(model, [(prompt, completion), other])
    assert batched[0].item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert batched[1].item() == pytest.approx(completion_logprob(model, *other).item(), abs=1e-5)


def test_complete_stops_at_the_end_marker_and_refuses_prompts_that_do_not_fit():
    model, tok = _tiny_chat_model()
    end = tok.encode(E)[0]
    with torch.no_grad():  # final features = the all-ones vector, which only the end marker's embedding matches
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.fill_(1.0)
        model.transformer.wte.weight[end] = 10.0
    assert complete(model, tok.encode(f"{U}x{E}{A}"), end) == []
    with pytest.raises(ValueError, match="shorter"):
        complete(model, [1] * 64, end)


def test_bm25_scores_by_the_formula():
    index = BM25(["a b", "a c c", "d"])
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    norm = 1.5 * (1 - 0.75 + 0.75 * 3 / 2)            # |d| = 3, average length 2
    assert index.scores("c") == pytest.approx([0.0, idf * 2 * 2.5 / (2 + norm), 0.0])
    assert index.top("c a", 2) == [1, 0]
    assert BM25(["扩散模型 diffusion", "变分自编码器"]).top("扩散")[0] == 0
    with pytest.raises(ValueError):
        BM25([])


def test_lesson_text_is_cut_into_short_passages_and_its_glossary_rows_are_found():
    lines = [("05", "| causal mask | 因果掩码 |"), ("05", "word " * 40)]
    passages = tasks.chunks(lines, 48)
    assert passages[0] == "| causal mask | 因果掩码 |" and all(len(p) <= 48 for p in passages)
    assert "".join(passages[1:]).replace(" ", "") == ("word" * 40)
    assert tasks.glossary_rows(lines) == {"causal mask": "因果掩码"}


def test_retriever_searches_the_quoted_term_and_prefers_the_glossary_row():
    from aigc_course.recipes.assistant import retrieve

    passages = ["Chinese readers: what is the Chinese for a term?", "manifold learning and the manifold",
                "| manifold | 流形 |", "| encoder | 编码器 |"]
    index = BM25(passages)
    assert index.top('What is the Chinese for "manifold"?')[0] == 0       # the question's own words win plain BM25
    assert retrieve(index, 'What is the Chinese for "manifold"?') == "| manifold | 流形 |"
    assert retrieve(index, "“编码器”的英文是什么？") == "| encoder | 编码器 |"
    assert retrieve(BM25(passages[:2]), 'What is the Chinese for "manifold"?') == passages[1]   # no row: BM25's best


def test_shipped_corpus_is_the_lessons_text_and_reads_without_a_checkout(tmp_path, monkeypatch):
    shipped = tasks.lesson_lines()
    assert len(shipped) > 1000 and {lesson for lesson, _ in shipped} >= {"00_welcome", "08_text_to_image"}
    assert "09_assistant" not in {lesson for lesson, _ in shipped}
    assert ("04_diffusion", "| diffusion model | 扩散模型 |") in shipped or any(
        line.startswith("| diffusion model |") for _, line in shipped)
    monkeypatch.chdir(tmp_path)                      # a grader's sandbox: no notebooks/ beside the package
    assert tasks.lesson_lines() == shipped
    with pytest.raises(FileNotFoundError, match="no lesson notebooks"):
        tasks.read_lesson_lines(tmp_path)


def test_chat_reply_is_deterministic_when_greedy_and_rejects_an_empty_message():
    from aigc_course.views.widgets.chat import chat_prompt, chat_reply

    model, tok = _tiny_chat_model()
    assert chat_prompt("你好") == f"{S}简答。{E}{U}你好{E}{A}"
    assert chat_reply(model, tok, "What is 1 plus 1?") == chat_reply(model, tok, "What is 1 plus 1?")
    hot = {chat_reply(model, tok, "What is 1 plus 1?", temperature=2.0, seed=s) for s in range(3)}
    assert len(hot) > 1
    with pytest.raises(ValueError, match="message"):
        chat_reply(model, tok, "   ")


def test_chat_explorer_answers_and_shows_its_settings():
    pytest.importorskip("ipywidgets")
    from aigc_course.views.widgets import ChatExplorer

    model, tok = _tiny_chat_model()
    explorer = ChatExplorer(model, tok)
    explorer.message.value = "What is 2 plus 2?"
    explorer.send()
    explorer.send()
    assert explorer.last_error is None and len(explorer.history) == 2
    assert explorer.history[0][1] == explorer.history[1][1] and "chat-reply" in explorer.transcript.value
    explorer.temperature.value = 1.5
    explorer.send()
    assert "T = 1.5" in explorer.history[-1][2]
    explorer.message.value = ""
    explorer.send()
    assert explorer.last_error is not None and "message" in explorer.status.value
    explorer.message.value, explorer.retrieval.value = '"manifold"?', True   # short: the tiny model reads 63 tokens
    explorer.send()
    assert explorer.last_error is None and explorer.history[-1][3] == "| manifold | 流形 |"
    assert "chat-context" in explorer.transcript.value and "| manifold | 流形 |" in explorer.transcript.value


def test_chat_box_builds_the_prompt_the_models_were_tuned_and_measured_on():
    from aigc_course.views.widgets.chat import chat_prompt

    for inst in tasks.instructions(20, 4) + tasks.instructions(20, 4, "held_out"):
        assert chat_prompt(inst.question, context=inst.context) == inst.prompt()


def test_chat_command_answers_and_reports_bad_input_in_one_line(tmp_path, capsys):
    from aigc_course.__main__ import main
    from aigc_course.core.checkpoints import save_checkpoint
    from aigc_course.recipes.assistant import tokenizer_card

    model, tok = _tiny_chat_model()
    save_checkpoint(model, tmp_path / "tiny", {"tokenizer": tokenizer_card(tok)})
    assert main(["chat", "--checkpoint", str(tmp_path / "tiny"), "--message", "What is 1 plus 1?"]) == 0
    assert capsys.readouterr().out.strip() != ""
    tiny = str(tmp_path / "tiny")
    assert main(["chat", "--checkpoint", tiny, "--retrieve", "--message", "“流形”的英文是什么？"]) == 0
    assert capsys.readouterr().out.startswith("retrieved: | manifold | 流形 |\n")
    assert main(["chat", "--checkpoint", str(tmp_path / "tiny"), "--message", "  "]) == 0
    assert "type a message first" in capsys.readouterr().err
    assert main(["chat", "--checkpoint", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    assert main(["chat", "--checkpoint", str(tmp_path / "tiny"), "--temperature", "-1", "--message", "x"]) == 1
    assert "--temperature" in capsys.readouterr().err


def test_modular_split_covers_the_table_once():
    from aigc_course.recipes.assistant import first_step_reaching, modular_split

    train, test = modular_split(7, 0.4, 0)
    assert len(train) == 19 and len(test) == 30
    rows = {tuple(r.tolist()) for r in torch.cat([train, test])}
    assert len(rows) == 49 and all(c == (a + b) % 7 and eq == 7 for a, b, eq, c in rows)
    curve = [{"step": 10, "acc": 0.5}, {"step": 20, "acc": 0.995}, {"step": 30, "acc": 1.0}]
    assert first_step_reaching(curve, "acc") == 20 and first_step_reaching(curve, "acc", 1.01) is None


def test_exercise_checks_accept_right_answers_and_hint_on_wrong_ones(capsys):
    from aigc_course.teaching import exercises

    exercises.check_assistant_mask(lambda ids, a, e: tasks.assistant_mask(ids, a, e))
    exercises.check_dpo_loss(lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc - rc) - (pr - rr))))
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["Exercise 9.1 assistant-only loss mask: correct", "Exercise 9.2 DPO loss: correct"]
    exercises.check_assistant_mask(lambda ids, a, e: torch.as_tensor(ids) == a)   # the marker, not the reply
    exercises.check_dpo_loss(lambda pc, pr, rc, rr, b: -F.logsigmoid(b * (pc - pr)))  # forgot the reference
    exercises.check_dpo_train(lambda ref, p, c, r, steps, lr, beta: ref.clone())      # never trained
    assert all("not yet" in line for line in capsys.readouterr().out.splitlines())


def test_dpo_training_exercise_is_graded_by_what_the_policy_prefers():
    from aigc_course.teaching.exercises import EXERCISES
    from aigc_course.teaching.exercises.assistant import won_share

    exercise = EXERCISES["9.3"]
    for args in exercise.grading_inputs(seed=4, draws=2):
        trained = exercise.reference(*args)
        assert won_share(trained, *args[:4]) >= 0.9
        assert exercise.compare(trained, trained, args)
        reversed_prefs = exercise.reference(args[0], args[1], args[3], args[2], *args[4:])  # learns the opposite
        assert not exercise.compare(reversed_prefs, trained, args)


def test_in_context_run_writes_its_few_shot_curves_and_its_loss_falls(tmp_path):
    import json

    from aigc_course.recipes.assistant import InContextRecipe, train_in_context

    recipe = InContextRecipe(iters=400, eval_every=200, n_test=40, shots=(0, 2))
    result = train_in_context(recipe, out=tmp_path / "icl", command="test")
    curve = result["curve"]
    assert [row["step"] for row in curve] == [200, 400]
    assert set(curve[-1]) == {"step", "rule_0shot", "rule_2shot"}
    # a uniform guess among the 8 letters costs ln 8 = 2.08 nats per answer letter
    assert curve[0]["rule_2shot"]["answer_nats"] > curve[-1]["rule_2shot"]["answer_nats"]
    assert curve[-1]["rule_2shot"]["answer_nats"] < 0.95 * math.log(8)
    written = json.loads((tmp_path / "icl.json").read_text())
    assert written["what"] == "in_context" and written["command"] == "test" and written["recipe"]["iters"] == 400
