"""WordNet 3.0 for NLTK's METEOR, offline: Debian packages + copies into an NLTK data folder.

NLTK cannot download ``wordnet`` here (and the evaluator never downloads anything at run time).
The WordNet 3.0 database comes from Debian's ``wordnet-base`` and ``wordnet-sense-index``
packages (``/usr/share/wordnet``); the small ``lexnames`` table, which Debian only prints in a
man page but NLTK's reader requires, ships with this package (WordNet licence, see
``llamo_plugin/resources/wordnet/LICENSE``). The files are **copied**, not symlinked, into
``<nltk_data>/corpora/wordnet/``: NLTK 3.10 refuses corpus files that resolve outside the
corpus root.

Set-up (idempotent; installs the Debian packages when they are missing, needs root or sudo)::

    python -m llamo_plugin.eval.wordnet_setup            # -> ~/.cache/llamo-plugin/nltk_data
    python -m llamo_plugin.eval.wordnet_setup --nltk-data DIR --no-apt

The folder is ``$LLAMO_NLTK_DATA`` if set, else ``~/.cache/llamo-plugin/nltk_data``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Where Debian's wordnet-base / wordnet-sense-index put the database.
SYSTEM_WORDNET = Path("/usr/share/wordnet")
DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
ENV_VAR = "LLAMO_NLTK_DATA"

#: Files NLTK's ``WordNetCorpusReader`` opens (``lexnames`` comes from our resources).
#: ``index.sense`` (package ``wordnet-sense-index``) is read when the reader is built: NLTK
#: 3.10 maps the loaded WordNet onto the corpus named ``wordnet`` through sense keys.
REQUIRED_FILES: tuple[str, ...] = tuple(
    [f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv")]
    + [f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")]
    + ["index.sense"]
)
#: Copied when present (counts, verb frames); METEOR does not need them.
OPTIONAL_FILES: tuple[str, ...] = (
    "cntlist.rev",
    "cntlist",
    "sents.vrb",
    "sentidx.vrb",
    "frames.vrb",
)
MANIFEST = "LLAMO_WORDNET.json"


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


def _lexnames_bytes() -> bytes:
    return (resources.files("llamo_plugin") / "resources" / "wordnet" / "lexnames").read_bytes()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def install_debian_packages(packages: Sequence[str] = DEBIAN_PACKAGES) -> None:
    """``apt-get install -y`` the packages (``apt-get update`` and retry only on failure)."""
    apt = shutil.which("apt-get")
    if apt is None:
        raise WordNetUnavailableError(
            "apt-get not found: install WordNet 3.0 (packages wordnet-base, wordnet-sense-index "
            "or the Princeton WordNet-3.0/dict files) and pass --source DIR"
        )
    prefix: list[str] = []
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise WordNetUnavailableError(
                "installing Debian packages needs root: run as root or install "
                f"{' '.join(packages)} yourself"
            )
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, apt, "install", "-y", "--no-install-recommends", *packages]
    logger.info("running: %s", " ".join(install))
    if subprocess.run(install, env=env, check=False).returncode == 0:
        return
    logger.info("apt-get install failed; running apt-get update and retrying")
    subprocess.run([*prefix, apt, "update"], env=env, check=True)
    subprocess.run(install, env=env, check=True)


def setup_wordnet(
    nltk_data: str | Path | None = None,
    *,
    source: str | Path = SYSTEM_WORDNET,
    allow_apt: bool = True,
    force: bool = False,
) -> Path:
    """Make ``<nltk_data>/corpora/wordnet`` a complete WordNet 3.0 corpus; return its path.

    Args:
        nltk_data: the NLTK data folder (default :func:`default_nltk_data`).
        source: folder with the WordNet database files (Debian: ``/usr/share/wordnet``).
        allow_apt: install the Debian packages if ``source`` lacks required files.
        force: copy again even if the folder is already complete.
    """
    target = wordnet_dir(nltk_data)
    if is_installed(nltk_data) and not force:
        logger.info("WordNet already set up in %s", target)
        return target
    src = Path(source)
    missing = [n for n in REQUIRED_FILES if not (src / n).is_file()]
    if missing and allow_apt and src == SYSTEM_WORDNET:
        install_debian_packages()
        missing = [n for n in REQUIRED_FILES if not (src / n).is_file()]
    if missing:
        raise WordNetUnavailableError(f"WordNet files missing in {src}: {', '.join(missing)}")
    target.mkdir(parents=True, exist_ok=True)
    copied: dict[str, str] = {}
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        if not (src / name).is_file():
            continue
        dest = target / name
        if dest.is_symlink():
            dest.unlink()
        shutil.copyfile(src / name, dest)  # follows a symlinked source: always a real copy
        copied[name] = _sha256(dest)
    lexnames = target / "lexnames"
    if lexnames.is_symlink():
        lexnames.unlink()
    lexnames.write_bytes(_lexnames_bytes())
    copied["lexnames"] = _sha256(lexnames)
    licence = resources.files("llamo_plugin") / "resources" / "wordnet" / "LICENSE"
    (target / "LICENSE").write_bytes(licence.read_bytes())
    (target / MANIFEST).write_text(
        json.dumps({"source": str(src), "files": copied}, indent=2, sort_keys=True) + "\n"
    )
    logger.info("WordNet 3.0 set up in %s (%d files)", target, len(copied))
    return target


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
            f"WordNet is not set up in {wordnet_dir(nltk_data)}; run "
            "`python -m llamo_plugin.eval.wordnet_setup` (or set LLAMO_NLTK_DATA)"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: set up WordNet and print the corpus folder."""
    parser = argparse.ArgumentParser(
        prog="python -m llamo_plugin.eval.wordnet_setup",
        description="Copy WordNet 3.0 (Debian wordnet-base + wordnet-sense-index) into an NLTK "
        "data folder for METEOR; installs the Debian packages if missing.",
    )
    parser.add_argument(
        "--nltk-data",
        type=Path,
        default=None,
        help=f"NLTK data folder (default ${ENV_VAR} or ~/.cache/llamo-plugin/nltk_data)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=SYSTEM_WORDNET,
        help="folder holding the WordNet database files (default %(default)s)",
    )
    parser.add_argument("--no-apt", action="store_true", help="never run apt-get")
    parser.add_argument("--force", action="store_true", help="copy again even if complete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        target = setup_wordnet(
            args.nltk_data, source=args.source, allow_apt=not args.no_apt, force=args.force
        )
        reader = load_wordnet(args.nltk_data)
        n = len(reader.synsets("molecule"))
    except (WordNetUnavailableError, subprocess.CalledProcessError, OSError) as exc:
        logger.error("%s", exc)
        return 1
    logger.info("check: %d synsets for 'molecule'", n)
    sys.stdout.write(f"{target}\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
