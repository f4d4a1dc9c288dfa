"""The classroom's JupyterHub pieces: per-learner passwords and a spawner that gives each learner a home.

* :class:`PasswordFileAuthenticator`: learners log in with a name and their own password,
  checked against ``passwords`` (one ``name:scrypt$salt$hash`` line each, written by
  ``python classroom/classroom_hub.py add NAME``). No system accounts, no root, no network
  service. One shared class password (JupyterHub's ``SharedPasswordAuthenticator``) would let any
  learner log in as any other, so it does not fit a class whose files must stay apart.
* :class:`ClassroomSpawner`: JupyterHub's ``SimpleLocalProcessSpawner`` (every learner's server
  is a process of the hub's own OS user, in ``homes/NAME``), plus, on a learner's first start,
  their own copy of the learner notebooks (the course's student build: solutions stripped).
  The folder is private to the hub's OS user (0700). What this does NOT give: separation between
  learners' *kernels*, which all run as that one OS user; see classroom/README.md for
  ``LocalProcessSpawner`` with system users and for Kubernetes.

Command line (run on the lab machine)::

    python classroom/classroom_hub.py add ann          # asks for ann's password (or reads it from stdin)
    python classroom/classroom_hub.py list
"""
from __future__ import annotations

import argparse
import getpass
import hashlib
import hmac
import re
import secrets
import shutil
import sys
from pathlib import Path

NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")   # JupyterHub lower-cases names; keep them path- and URL-safe
SCRYPT = {"n": 2**14, "r": 8, "p": 1}        # about 16 MB and 50 ms per check: slow for guessing, fine for logins


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<key hex>`` of ``password`` (a fresh 16-byte salt unless one is given)."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **SCRYPT)
    return f"scrypt${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, salt, _ = stored.split("$")
    except ValueError:
        return False
    return kind == "scrypt" and hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def read_passwords(path: Path) -> dict[str, str]:
    """{name: stored hash} from ``path`` (a missing file means no learners yet)."""
    if not Path(path).exists():
        return {}
    users = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, stored = line.partition(":")
        if not NAME.fullmatch(name) or not stored:
            raise ValueError(f"{path}, line {number}: expected NAME:scrypt$SALT$HASH "
                             f"(write it with `python classroom/classroom_hub.py add NAME`)")
        users[name] = stored
    return users


def add_user(path: Path, name: str, password: str) -> None:
    """Add ``name`` (or replace their password) in the password file; the file is readable by its owner only."""
    if not NAME.fullmatch(name):
        raise ValueError(f"user name {name!r}: use lower-case letters, digits, '-' and '_', starting with a letter")
    if len(password) < 8:
        raise ValueError("use a password of at least 8 characters")
    users = read_passwords(path)
    users[name] = hash_password(password)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{n}:{h}\n" for n, h in sorted(users.items())))
    tmp.chmod(0o600)
    tmp.replace(path)


def copy_learner_notebooks(source: Path, home: Path) -> bool:
    """Give ``home`` its own copy of the learner notebooks the first time; never overwrite a learner's work.

    Returns True when it copied. ``home`` is created private (0700).
    """
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    marker = home / ".aigc-notebooks-copied"
    if marker.exists():
        return False
    for notebook in sorted(Path(source).glob("*.ipynb")):
        target = home / notebook.name
        if not target.exists():
            shutil.copy2(notebook, target)
            target.chmod(0o600)
    news = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)  # answer JupyterLab's "notified about Jupyter news?" once, for them
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}\n')
    marker.write_text("the learner notebooks were copied here once; delete this file to copy missing ones again\n")
    return True


try:  # the classes below need JupyterHub; the password helpers above do not
    from jupyterhub.auth import Authenticator
    from jupyterhub.spawner import SimpleLocalProcessSpawner
    from traitlets import Unicode
except ImportError:  # pragma: no cover - `pip install -e '.[teach]'` installs it
    Authenticator = SimpleLocalProcessSpawner = None

if Authenticator is not None:

    class PasswordFileAuthenticator(Authenticator):
        """Each learner's own password, checked against a file of scrypt hashes (see the module docstring)."""

        password_file = Unicode(help="path of the NAME:scrypt$SALT$HASH file").tag(config=True)

        async def authenticate(self, handler, data):
            name = (data.get("username") or "").strip().lower()
            stored = read_passwords(Path(self.password_file)).get(name)
            if stored and verify_password(data.get("password") or "", stored):
                return name
            self.log.warning("failed login for %r", name)
            return None

        async def check_allowed(self, username, authentication=None):
            """Every name in the password file may log in (the file is the class list)."""
            return username in read_passwords(Path(self.password_file))

    class ClassroomSpawner(SimpleLocalProcessSpawner):
        """Each learner's server in their own home, with their own copy of the learner notebooks."""

        learner_notebooks = Unicode(help="folder of learner notebooks (the course's student build)").tag(config=True)

        async def start(self):
            copied = copy_learner_notebooks(Path(self.learner_notebooks), Path(self.home_dir))
            if copied:
                self.log.info("copied the learner notebooks to %s", self.home_dir)
            self.notebook_dir = self.home_dir
            return await super().start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The classroom hub's password file")
    parser.add_argument("--file", default=str(Path(__file__).with_name("state") / "passwords"),
                        help="password file (default: classroom/state/passwords)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a learner (or set a new password); reads it from stdin if not a terminal")
    add.add_argument("name")
    sub.add_parser("list", help="the learners in the file")
    args = parser.parse_args(argv)
    try:
        if args.command == "add":
            password = getpass.getpass(f"password for {args.name}: ") if sys.stdin.isatty() else sys.stdin.readline()
            add_user(Path(args.file), args.name, password.rstrip("\n"))
            print(f"{args.name} can log in ({args.file})")
        else:
            print("\n".join(sorted(read_passwords(Path(args.file)))))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
