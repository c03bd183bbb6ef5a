"""Our model format: bit-identical round trip, checksums, strict loading."""

from __future__ import annotations

import json

import pytest
import torch

from llamo_plugin.checkpoint.format import load_model, save_model
from llamo_plugin.config import DecodeConfig
from llamo_plugin.errors import CheckpointError

SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "CCO", "C", "[Na+].[Cl-]"]


@pytest.fixture()
def saved(tiny_model, tmp_path):
    path = tmp_path / "model"
    save_model(tiny_model, path)
    return path


def test_round_trip_is_bit_identical(tiny_model, saved) -> None:
    reloaded = load_model(saved)
    original_sd, new_sd = tiny_model.state_dict(), reloaded.state_dict()
    assert set(original_sd) == set(new_sd)
    assert all(torch.equal(original_sd[k], new_sd[k]) for k in original_sd)
    decode = DecodeConfig(max_new_tokens=12)
    a, b = (
        m.generate([m.prepare(s, "Describe this molecule.") for s in SMILES], decode)
        for m in (tiny_model, reloaded)
    )
    assert [x.token_ids for x in a] == [x.token_ids for x in b]
    assert reloaded.checksum == json.loads((saved / "manifest.json").read_text())["model_sha256"]
    assert reloaded.config == tiny_model.config


def test_corrupted_weights_refused(saved) -> None:
    weights = saved / "lm" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(saved)


def test_truncated_and_missing_files_refused(saved) -> None:
    graph = saved / "graph.safetensors"
    graph.write_bytes(graph.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="size"):
        load_model(saved)
    graph.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_model(saved)


def test_not_a_model_directory(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such model directory"):
        load_model(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="manifest"):
        load_model(tmp_path)


def test_shape_mismatch_refused_even_with_valid_manifest(saved) -> None:
    """A consistent manifest does not save a file with the wrong tensors: strict loading."""
    from safetensors.torch import load_file, save_file

    from llamo_plugin.checkpoint.format import write_manifest

    path = saved / "graph.safetensors"
    tensors = load_file(path)
    tensors["projector.query_tokens"] = torch.zeros(6, 5, 300)
    save_file(tensors, path)
    write_manifest(saved)
    with pytest.raises(CheckpointError, match="shape"):
        load_model(saved)
    del tensors["projector.query_tokens"]
    save_file(tensors, path)
    write_manifest(saved)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(saved)


def test_unknown_config_key_refused(saved) -> None:
    from llamo_plugin.checkpoint.format import write_manifest

    cfg = json.loads((saved / "llamo_config.json").read_text())
    cfg["projector"]["num_eos_token"] = 1  # the original's silently ignored key
    (saved / "llamo_config.json").write_text(json.dumps(cfg))
    write_manifest(saved)
    with pytest.raises(CheckpointError, match="num_eos_token"):
        load_model(saved)


def test_refuses_to_overwrite(tiny_model, saved) -> None:
    with pytest.raises(CheckpointError, match="exists"):
        save_model(tiny_model, saved)


def test_tied_embeddings_round_trip(tmp_path) -> None:
    from llamo_plugin.model.factory import TINY_LM_CONFIG, build_random_model, tiny_tokenizer

    model = build_random_model({**TINY_LM_CONFIG, "tie_word_embeddings": True}, tiny_tokenizer())
    save_model(model, tmp_path / "tied")
    reloaded = load_model(tmp_path / "tied")
    lm = reloaded.lm
    assert lm.lm_head.weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()
    assert torch.equal(lm.lm_head.weight, model.lm.lm_head.weight)


class _CountingHash:
    """Wraps ``sha256_file`` and counts which files it read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from llamo_plugin.checkpoint import format as fmt

        self.files: list[str] = []
        real = fmt.sha256_file

        def counting(path, *args, **kw):  # type: ignore[no-untyped-def]
            self.files.append(path.name)
            return real(path, *args, **kw)

        monkeypatch.setattr(fmt, "sha256_file", counting)


def test_sha256_verified_once_per_file_state(saved, monkeypatch, tmp_path) -> None:
    """The first load hashes every file and leaves a stamp; later loads check sizes only;
    a file whose state changed (modification time) is hashed again, and a corrupted one is
    still refused; ``verify="full"`` always hashes."""
    import os

    monkeypatch.setenv("LLAMO_CACHE_DIR", str(tmp_path / "cache"))
    hashes = _CountingHash(monkeypatch)
    manifest = json.loads((saved / "manifest.json").read_text())
    load_model(saved)
    assert sorted(hashes.files) == sorted(p.rsplit("/", 1)[-1] for p in manifest["files"])
    first = len(hashes.files)
    load_model(saved)
    load_model(saved)
    assert len(hashes.files) == first  # the stamp matched: nothing read again
    load_model(saved, verify="full")
    assert len(hashes.files) == 2 * first
    weights = saved / "lm" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))  # same size, new modification time
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(saved)
    data[-5] ^= 0xFF
    weights.write_bytes(bytes(data))
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    load_model(saved)  # restored: verified again in full, then stamped
    before = len(hashes.files)
    load_model(saved)
    assert len(hashes.files) == before


def test_embeddings_only_load_for_backends_with_their_own_lm(tiny_model, saved) -> None:
    """``lm_weights="embeddings"`` (the vllm backend's load) reads one tensor of the LM: the
    prompt embeddings equal the full model's, and the model refuses to run the LM."""
    from llamo_plugin.checkpoint.format import InputEmbeddingsOnly

    light = load_model(saved, lm_weights="embeddings")
    full = load_model(saved)
    assert isinstance(light.lm, InputEmbeddingsOnly)
    assert light.checksum == full.checksum and light.lm.dtype == full.lm.dtype
    assert sum(p.numel() for p in light.lm.parameters()) < sum(
        p.numel() for p in full.lm.parameters()
    )
    from llamo_plugin.prompt.assemble import collate_prompts

    example = light.prepare("CCO", "Describe this molecule.")
    batch = collate_prompts([example.prompt], light.tokenizer.pad_token_id)
    tokens = full.encode_graphs([example.graph])
    assert torch.equal(light.inputs_embeds(batch, tokens), full.inputs_embeds(batch, tokens))
    with pytest.raises(RuntimeError, match="only the LM's input embeddings"):
        light.lm(input_ids=batch.input_ids)
