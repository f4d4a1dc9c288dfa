"""The classroom hub's own pieces without a hub: the password file, the learner's first copy, the config file."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "classroom"))
import classroom_hub  # noqa: E402


def test_password_file_round_trip(tmp_path):
    path = tmp_path / "state" / "passwords"
    classroom_hub.add_user(path, "ann", "correct horse")
    classroom_hub.add_user(path, "ben", "battery staple")
    classroom_hub.add_user(path, "ann", "a new password")  # replaces ann's
    users = classroom_hub.read_passwords(path)
    assert sorted(users) == ["ann", "ben"]
    assert classroom_hub.verify_password("a new password", users["ann"])
    assert not classroom_hub.verify_password("correct horse", users["ann"])
    assert not classroom_hub.verify_password("battery staple", users["ann"])  # ben's password is not ann's
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "correct horse" not in path.read_text() and "battery" not in path.read_text()
    # the same password hashes differently for each user (salted), and to the known scrypt value for a given salt
    assert users["ben"].split("$")[1] != users["ann"].split("$")[1]
    import hashlib
    salt = bytes(range(16))
    key = hashlib.scrypt(b"pw-12345", salt=salt, n=2**14, r=8, p=1, dklen=32)
    assert classroom_hub.hash_password("pw-12345", salt) == f"scrypt${salt.hex()}${key.hex()}"


def test_password_file_errors(tmp_path):
    path = tmp_path / "passwords"
    assert classroom_hub.read_passwords(path) == {}  # no file yet: nobody may log in
    with pytest.raises(ValueError, match="at least 8"):
        classroom_hub.add_user(path, "ann", "short")
    with pytest.raises(ValueError, match="lower-case"):
        classroom_hub.add_user(path, "../root", "long enough")
    path.write_text("ann:scrypt$00$11\nnot a line\n")
    with pytest.raises(ValueError, match="line 2: expected NAME:scrypt"):
        classroom_hub.read_passwords(path)
    assert not classroom_hub.verify_password("x", "garbage")


def test_cli_reads_the_password_from_stdin(tmp_path):
    path = tmp_path / "passwords"
    run = subprocess.run([sys.executable, str(ROOT / "classroom" / "classroom_hub.py"), "--file", str(path), "add",
                          "cleo"], input="cleo-secret\n", capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert classroom_hub.verify_password("cleo-secret", classroom_hub.read_passwords(path)["cleo"])
    bad = subprocess.run([sys.executable, str(ROOT / "classroom" / "classroom_hub.py"), "--file", str(path), "add",
                          "Cleo!"], input="cleo-secret\n", capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "error: user name 'Cleo!'" in bad.stderr


def test_first_copy_never_overwrites_a_learners_work(tmp_path):
    build = tmp_path / "build"
    build.mkdir()
    (build / "01_vae.ipynb").write_text("learner version")
    home = tmp_path / "homes" / "ann"
    assert classroom_hub.copy_learner_notebooks(build, home) is True
    assert (home / "01_vae.ipynb").read_text() == "learner version"
    assert oct(home.stat().st_mode & 0o777) == "0o700"
    (home / "01_vae.ipynb").write_text("ann's answers")
    (build / "02_gan.ipynb").write_text("new lesson")
    assert classroom_hub.copy_learner_notebooks(build, home) is False  # only once
    assert (home / "01_vae.ipynb").read_text() == "ann's answers" and not (home / "02_gan.ipynb").exists()
    (home / ".aigc-notebooks-copied").unlink()  # the teacher asks for missing lessons to be copied
    assert classroom_hub.copy_learner_notebooks(build, home) is True
    assert (home / "01_vae.ipynb").read_text() == "ann's answers" and (home / "02_gan.ipynb").exists()


LOAD_CONFIG = ("import sys; from traitlets.config import PyFileConfigLoader; "
               "c = PyFileConfigLoader('jupyterhub_config.py', path=sys.argv[1]).load_config(); "
               "print(c.JupyterHub.spawner_class.__name__, c.ClassroomSpawner.home_dir_template, c.JupyterHub.bind_url)")


def test_hub_config_names_what_is_missing(tmp_path):
    pytest.importorskip("jupyterhub")
    env = {**os.environ, "CLASSROOM_STATE": str(tmp_path), "HUB_PORT": "8123"}

    def load():
        return subprocess.run([sys.executable, "-c", LOAD_CONFIG, str(ROOT / "classroom")], capture_output=True,
                              text=True, timeout=120, env=env)

    run = load()
    if not (ROOT / "classroom" / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        assert "configurable-http-proxy is missing: run `make hub`" in run.stderr
        return
    assert run.returncode != 0 and "learner_notebooks is missing: run `make hub`" in run.stderr
    (tmp_path / "learner_notebooks").mkdir()
    run = load()
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["ClassroomSpawner", f"{tmp_path}/homes/{{username}}", "http://127.0.0.1:8123"]
