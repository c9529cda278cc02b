"""Start a real JupyterLab on localhost and drive it with Playwright + Debian chromium.

Used by the end-to-end browser test. Nothing here downloads a browser: Playwright
is pointed at the system ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system chromium, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, relative: str) -> str:
        return f"{self.url}/lab/tree/{relative}?token={self.token}&reset"


@contextlib.contextmanager
def jupyter_lab(root: Path, env: dict[str, str], log: Path) -> Iterator[Lab]:
    """Run ``jupyter lab`` on a free loopback port with a random token; stop it afterwards."""
    port, token = free_port(), secrets.token_hex(16)
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    settings = log.parent / "lab-settings"  # beside the log, in the test's temp dir
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text('{"windowingMode": "none"}')  # render every cell, not only those in view
    docmanager = settings / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    docmanager.parent.mkdir(parents=True, exist_ok=True)
    docmanager.write_text('{"autosave": false}')  # the tests run notebooks of the checkout: never save them
    workspaces = log.parent / "lab-workspaces"
    command = [
        jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={workspaces}", "--ServerApp.disable_check_xsrf=False",
        "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    full_env = {**os.environ, **env, "JUPYTER_PLATFORM_DIRS": "1"}
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=root, env=full_env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"jupyter lab exited early; see {log}:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                    break
                time.sleep(0.5)
            else:
                raise RuntimeError(f"jupyter lab did not start within 90 s; see {log}")
            yield Lab(url=url, token=token, root=root, log=log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
