"""Set up WordNet 3.0 for NLTK's METEOR, offline: Debian packages + copies into an NLTK data
folder. A development tool (``make wordnet``), outside the installed package: it runs apt-get.

The WordNet 3.0 database comes from Debian's ``wordnet-base`` and ``wordnet-sense-index``
packages (``/usr/share/wordnet``); the small ``lexnames`` table, which Debian only prints in a
man page but NLTK's reader requires, ships with llamo_plugin (WordNet licence, see
``llamo_plugin/resources/wordnet/LICENSE``). The files are **copied**, not symlinked, into
``<nltk_data>/corpora/wordnet/``: NLTK 3.10 refuses corpus files that resolve outside the
corpus root. :mod:`llamo_plugin.eval.wordnet` reads the result.

Set-up (idempotent; installs the Debian packages when they are missing, needs root or sudo)::

    python -m tools.wordnet_setup            # -> ~/.cache/llamo-plugin/nltk_data
    python -m tools.wordnet_setup --nltk-data DIR --no-apt
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

from llamo_plugin.eval.wordnet import (
    ENV_VAR,
    REQUIRED_FILES,
    WordNetUnavailableError,
    is_installed,
    load_wordnet,
    wordnet_dir,
)

logger = logging.getLogger(__name__)

#: Where Debian's wordnet-base / wordnet-sense-index put the database.
SYSTEM_WORDNET = Path("/usr/share/wordnet")
DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")

#: Copied when present (counts, verb frames); METEOR does not need them.
OPTIONAL_FILES: tuple[str, ...] = (
    "cntlist.rev",
    "cntlist",
    "sents.vrb",
    "sentidx.vrb",
    "frames.vrb",
)
MANIFEST = "LLAMO_WORDNET.json"


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


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: set up WordNet and print the corpus folder."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.wordnet_setup",
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
