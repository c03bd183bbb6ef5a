"""WordNet set-up: real copies (no symlinks) into an NLTK data folder, readable by NLTK."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from llamo_plugin.eval import wordnet
from tools import wordnet_setup as ws

LEXNAMES_SHA256 = "4767e2a1c6e68c1a93aa6b7c4ef7ebe9a815b50d7d5aac2788696f2cf3633bf1"


def test_bundled_lexnames_is_the_wordnet_30_table() -> None:
    data = ws._lexnames_bytes()
    assert hashlib.sha256(data).hexdigest() == LEXNAMES_SHA256
    lines = data.decode().splitlines()
    assert len(lines) == 45 and lines[0].split()[:2] == ["00", "adj.all"]


def test_default_folder_honours_the_environment(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ws.ENV_VAR, str(tmp_path / "nd"))
    assert ws.wordnet_dir() == tmp_path / "nd" / "corpora" / "wordnet"
    monkeypatch.delenv(ws.ENV_VAR)
    assert wordnet.default_nltk_data() == Path.home() / ".cache" / "llamo-plugin" / "nltk_data"


def test_missing_wordnet_is_a_clear_error(tmp_path: Path) -> None:
    assert not ws.is_installed(tmp_path)
    with pytest.raises(ws.WordNetUnavailableError, match="wordnet_setup"):
        ws.load_wordnet(tmp_path)
    with pytest.raises(ws.WordNetUnavailableError, match="missing"):
        ws.setup_wordnet(tmp_path, source=tmp_path / "nowhere", allow_apt=False)


def test_setup_copies_files_and_nltk_reads_them(tmp_path: Path) -> None:
    if not all((ws.SYSTEM_WORDNET / n).is_file() for n in ws.REQUIRED_FILES):
        pytest.skip("Debian wordnet-base is not installed (run the WordNet set-up step)")
    # a source folder made of symlinks must still give real copies
    source = tmp_path / "src"
    source.mkdir()
    for name in ws.REQUIRED_FILES:
        (source / name).symlink_to(ws.SYSTEM_WORDNET / name)
    target = ws.setup_wordnet(tmp_path / "nltk_data", source=source, allow_apt=False)
    for name in (*ws.REQUIRED_FILES, "lexnames"):
        assert (target / name).is_file() and not (target / name).is_symlink()
    assert ws.is_installed(tmp_path / "nltk_data")
    reader = ws.load_wordnet(tmp_path / "nltk_data")
    assert "automobile" in {lemma.name() for s in reader.synsets("car") for lemma in s.lemmas()}
    # a symlink planted in the corpus makes the folder incomplete again
    (target / "data.noun").unlink()
    (target / "data.noun").symlink_to(ws.SYSTEM_WORDNET / "data.noun")
    assert not ws.is_installed(tmp_path / "nltk_data")
    ws.setup_wordnet(tmp_path / "nltk_data", source=source, allow_apt=False)
    assert not (target / "data.noun").is_symlink()
