"""JupyterHub for one lab machine: `make hub` (see classroom/README.md).

Environment (all optional):
  CLASSROOM_STATE   folder for the hub's state: passwords, homes/, learner_notebooks/, database,
                    cookie secret (default: classroom/state)
  HUB_IP, HUB_PORT  where the hub listens (default 127.0.0.1:8000; HUB_IP=0.0.0.0 for the lab's
                    network, behind TLS: see the README)
  HUB_API_PORT, PROXY_API_PORT   the hub's and the proxy's own API ports on 127.0.0.1 (default 8081, 8001)
  HUB_ADMIN         a user name in the password file who may manage the others' servers
"""
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STATE = Path(os.environ.get("CLASSROOM_STATE", HERE / "state")).resolve()
BIN = Path(sys.executable).parent                     # the course's virtual environment
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"

sys.path.insert(0, str(HERE))
from classroom_hub import ClassroomSpawner, PasswordFileAuthenticator  # noqa: E402

if not PROXY.exists():
    raise SystemExit(f"{PROXY} is missing: run `make hub` (it runs `npm ci --prefix classroom` once)")
if not (STATE / "learner_notebooks").is_dir():
    raise SystemExit(f"{STATE / 'learner_notebooks'} is missing: run `make hub` "
                     f"(or `python -m aigc_course student --out {STATE / 'learner_notebooks'}`)")

c = get_config()  # noqa: F821 (defined by traitlets when it reads this file)

# --- where the hub listens, where it keeps its state
c.JupyterHub.bind_url = f"http://{os.environ.get('HUB_IP', '127.0.0.1')}:{os.environ.get('HUB_PORT', '8000')}"
c.JupyterHub.hub_ip = "127.0.0.1"                     # the hub's own API: only the proxy and the servers talk to it
c.JupyterHub.hub_port = int(os.environ.get("HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('PROXY_API_PORT', '8001')}"
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.command = [str(PROXY)]         # installed at set-up from classroom/package.json
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.cleanup_servers = True                   # stopping the hub stops the learners' servers

# --- who may log in: the learners in the password file (python classroom/classroom_hub.py add NAME)
c.JupyterHub.authenticator_class = PasswordFileAuthenticator
c.PasswordFileAuthenticator.password_file = str(STATE / "passwords")
if os.environ.get("HUB_ADMIN"):
    c.Authenticator.admin_users = {os.environ["HUB_ADMIN"]}

# --- each learner's server: their own home with their own copy of the learner notebooks
c.JupyterHub.spawner_class = ClassroomSpawner
c.ClassroomSpawner.home_dir_template = str(STATE / "homes" / "{username}")
c.ClassroomSpawner.learner_notebooks = str(STATE / "learner_notebooks")
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.args = ["--ServerApp.terminals_enabled=False",   # a learner needs notebooks, not a shell
                  "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
if os.geteuid() == 0:  # containers often run as root; a lab machine should not (see README)
    c.Spawner.args.append("--allow-root")
c.Spawner.env_keep = ["PATH", "PYTHONPATH", "LANG", "LC_ALL", "AIGC_LANG", "AIGC_THREADS", "VIRTUAL_ENV"]
c.Spawner.environment = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
                         "AIGC_THREADS": os.environ.get("AIGC_THREADS", "2")}  # 2 threads per learner's kernel
c.Spawner.start_timeout = 120                         # a loaded machine needs time to import JupyterLab
c.Spawner.http_timeout = 120
c.JupyterHub.shutdown_on_logout = True                # logging out stops that learner's server
