"""WordNet 3.0 for NLTK's METEOR: the reader over the set-up corpus folder (evaluation only).

NLTK cannot download ``wordnet`` here (and the evaluator never downloads anything at run time).
``tools/wordnet_setup.py`` (``make wordnet``; outside the installed package, since it runs
apt-get) copies WordNet 3.0 from Debian's ``wordnet-base`` and ``wordnet-sense-index`` into
``<nltk_data>/corpora/wordnet/``; this module reads it. The folder is ``$LLAMO_NLTK_DATA`` if
set, else ``~/.cache/llamo-plugin/nltk_data``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_VAR = "LLAMO_NLTK_DATA"
SETUP_COMMAND = "make wordnet` (or `python -m tools.wordnet_setup` in a checkout"

#: Files NLTK's ``WordNetCorpusReader`` opens (``lexnames`` comes from our resources).
#: ``index.sense`` (package ``wordnet-sense-index``) is read when the reader is built: NLTK
#: 3.10 maps the loaded WordNet onto the corpus named ``wordnet`` through sense keys.
REQUIRED_FILES: tuple[str, ...] = tuple(
    [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
    + [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
    + ["index.sense"]
)


class WordNetUnavailableError(RuntimeError):
    """WordNet is not set up in the NLTK data folder (the message says how to set it up)."""


def default_nltk_data() -> Path:
    """``$LLAMO_NLTK_DATA`` or ``~/.cache/llamo-plugin/nltk_data``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "llamo-plugin" / "nltk_data"


def wordnet_dir(nltk_data: str | Path | None = None) -> Path:
    """``<nltk_data>/corpora/wordnet``."""
    root = Path(nltk_data).expanduser() if nltk_data is not None else default_nltk_data()
    return root / "corpora" / "wordnet"


def is_installed(nltk_data: str | Path | None = None) -> bool:
    """True if every file NLTK needs is a regular file (not a symlink) in the corpus folder."""
    target = wordnet_dir(nltk_data)
    names = (*REQUIRED_FILES, "lexnames")
    return all((target / n).is_file() and not (target / n).is_symlink() for n in names)


_READERS: dict[str, Any] = {}


def load_wordnet(nltk_data: str | Path | None = None) -> Any:
    """An NLTK WordNet reader over the set-up folder (English only, no OMW), cached per folder.

    Raises :class:`WordNetUnavailableError` (with the set-up command) if it is not set up.
    """
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNet(WordNetCorpusReader):  # type: ignore[misc]
        """Skips NLTK's sense-key mapping between WordNet versions, only used for OMW."""

        def map_wn(self, version: str = "wordnet") -> None:
            return None

    if not is_installed(nltk_data):
        raise WordNetUnavailableError(
            f"WordNet is not set up in {wordnet_dir(nltk_data)}; run `{SETUP_COMMAND}`, "
            "or set LLAMO_NLTK_DATA) to set up wordnet"
        )
    root = wordnet_dir(nltk_data).resolve()
    if str(root) not in _READERS:
        authorize_nltk_data(nltk_data)
        with warnings.catch_warnings():  # "multilingual functions are not available": expected
            warnings.simplefilter("ignore", UserWarning)
            _READERS[str(root)] = EnglishWordNet(str(root), None)
    return _READERS[str(root)]


def authorize_nltk_data(nltk_data: str | Path | None = None) -> Path:
    """Put the NLTK data folder on ``nltk.data.path`` (once) and return it.

    NLTK >= 3.9.3 only opens corpus files under ``nltk.data.path`` roots ("Unauthorized path"
    otherwise), so a reader over our folder needs it there; ``nltk.corpus.wordnet`` then also
    finds this copy.
    """
    import nltk.data

    root = Path(nltk_data).expanduser() if nltk_data is not None else default_nltk_data()
    root = root.resolve()
    if str(root) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.insert(0, str(root))
    return root
