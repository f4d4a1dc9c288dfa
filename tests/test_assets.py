import json

import pytest

from aigc_course.core import assets


def test_every_shipped_file_is_registered_and_intact():
    statuses = assets.verify()
    assert {s.status for s in statuses} == {"ok"}, [s.detail for s in statuses if s.status != "ok"]
    registered = {s.path for s in statuses}
    shipped = {p.relative_to(assets.data_dir()).as_posix() for p in assets.data_dir().rglob("*")
               if p.is_file() and p.name not in {"assets.json", "README.md"}}
    assert shipped == registered, "every file in data/ must be in data/assets.json"


def test_registry_records_provenance():
    for asset in assets.registry().values():
        assert len(asset.sha256) == 64 and asset.size > 0
        assert asset.licence and asset.source and asset.made_by


def test_missing_file_names_the_fix(data_copy):
    (data_copy / "digits.npz").unlink()
    with pytest.raises(FileNotFoundError, match="git checkout -- data/"):
        assets.asset_path("digits.npz")
    assert [s.status for s in assets.verify() if s.path == "digits.npz"] == ["missing"]


def test_corrupted_file_is_caught_by_sha256(data_copy):
    path = data_copy / "digits.npz"
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(raw))
    with pytest.raises(assets.AssetError, match="corrupted"):
        assets.asset_path("digits.npz")


def test_truncated_file_is_caught_by_size(data_copy):
    path = data_copy / "digits.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(assets.AssetError, match="truncated"):
        assets.asset_path("digits.npz")


def test_unknown_asset_and_missing_registry(data_copy):
    with pytest.raises(FileNotFoundError, match="not a registered asset"):
        assets.asset_path("nope.bin")
    (data_copy / "assets.json").unlink()
    with pytest.raises(FileNotFoundError, match="registry"):
        assets.registry()


def test_register_adds_an_entry(data_copy):
    new = data_copy / "extra.txt"
    new.write_text("hello")
    asset = assets.register(new, licence="CC0", source="test", made_by="echo hello")
    assert asset.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert "extra.txt" in {e["path"] for e in json.loads((data_copy / "assets.json").read_text())}


def test_gpt2_tokenizer_reads_its_files_through_the_registry(data_copy):
    from aigc_course.data.tokenizers import GPT2Tokenizer, gpt2_files

    vocab, merges = gpt2_files()
    assert (vocab, merges) == (data_copy / "tokenizers/gpt2/encoder.json", data_copy / "tokenizers/gpt2/vocab.bpe")
    assert GPT2Tokenizer().encode("Hello world") == [15496, 995]  # GPT-2's ids, as in OpenAI's encoder
    raw = bytearray(merges.read_bytes())
    raw[-2] ^= 0x01  # one flipped bit in the last merge
    merges.write_bytes(bytes(raw))
    with pytest.raises(assets.AssetError, match=r"vocab.bpe is corrupted.*git checkout -- data/"):
        GPT2Tokenizer()
    vocab.unlink()
    with pytest.raises(FileNotFoundError, match=r"encoder.json is missing.*git checkout -- data/"):
        GPT2Tokenizer()
