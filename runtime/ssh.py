"""SSH to a device with the system OpenSSH clients (``ssh``, ``scp``), host keys always verified.

The host key is checked against a known_hosts file (``~/.ssh/known_hosts`` unless given). A host seen for
the first time is refused unless the caller asks explicitly for trust-on-first-use
(``accept_new_host_key``, OpenSSH's ``StrictHostKeyChecking=accept-new``); a *changed* key is always
refused. ``BatchMode`` makes every failure an error instead of a prompt, and each failure (unreachable,
authentication, host key unknown or changed, missing client) becomes one clear :class:`EdgeGhostError`.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgeGhostError


@dataclass(frozen=True)
class SSHTarget:
    """Where and how to connect: ``USER@HOST`` (or an alias from ~/.ssh/config), port, key, known_hosts."""

    host: str
    port: int | None = None
    identity: str | None = None
    known_hosts: str | None = None
    accept_new_host_key: bool = False
    connect_timeout_s: int = 10

    def options(self) -> list[str]:
        opts = [
            "-o", "BatchMode=yes",
            "-o", f"StrictHostKeyChecking={'accept-new' if self.accept_new_host_key else 'yes'}",
            "-o", f"ConnectTimeout={self.connect_timeout_s}",
            "-o", "LogLevel=ERROR",
        ]
        if self.known_hosts:
            opts += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.identity:
            opts += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        return opts

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    def _check(self) -> None:
        if not self.host or self.host.startswith("-"):
            raise EdgeGhostError(f"bad SSH host {self.host!r}; use USER@HOST")
        if self.identity and not Path(self.identity).expanduser().is_file():
            raise EdgeGhostError(f"SSH identity file {self.identity} does not exist")
        for tool in ("ssh", "scp"):
            if shutil.which(tool) is None:
                raise EdgeGhostError(f"{tool} not found: install the OpenSSH client (apt-get install openssh-client)")

    def _error(self, stderr: str) -> EdgeGhostError | None:
        """The one clear error for an SSH-level failure (exit status 255), or None if it is not one."""
        text = stderr.strip()
        known = f" ({self.known_hosts})" if self.known_hosts else ""
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "has changed and you have requested strict" in text:
            return EdgeGhostError(
                f"host key mismatch for {self.where}: the key it presents differs from the one in known_hosts"
                f"{known}. If the device was really reinstalled, remove the old key with "
                f"ssh-keygen -R '{self._known_name()}' and connect again; otherwise do not connect"
            )
        if "host key is known" in text or "Host key verification failed" in text:
            return EdgeGhostError(
                f"unknown host key for {self.where}: not in known_hosts{known}. Verify the device and add its key "
                f"(ssh-keyscan -p {self.port or 22} HOST >> known_hosts), or pass --accept-new-host-key to trust it "
                "on first contact"
            )
        if "Permission denied" in text or "Too many authentication failures" in text:
            return EdgeGhostError(
                f"authentication failed for {self.host}: the device refused the key"
                f"{' ' + self.identity if self.identity else ''} (password login is not used). Install your key with "
                f"ssh-copy-id{' -p ' + str(self.port) if self.port else ''} {self.host}"
            )
        for needle in ("Connection refused", "timed out", "No route to host", "Could not resolve hostname",
                       "Network is unreachable", "Connection closed", "Connection reset"):
            if needle in text:
                return EdgeGhostError(f"cannot reach {self.where}: {text.splitlines()[-1]}")
        return None

    def _known_name(self) -> str:
        host = self.host.rsplit("@", 1)[-1]
        return f"[{host}]:{self.port}" if self.port and self.port != 22 else host

    def run(self, command: str, *, timeout_s: float | None = 600, check: bool = True) -> subprocess.CompletedProcess:
        """Run a shell command on the device; SSH failures raise, the command's own status is returned
        (or raised as an error with its stderr when ``check``)."""
        self._check()
        args = ["ssh", *self.options(), *(["-p", str(self.port)] if self.port else []), self.host, command]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise EdgeGhostError(f"command on {self.where} did not finish within {timeout_s:.0f} s") from None
        if proc.returncode == 255:
            err = self._error(proc.stderr)
            if err is not None:
                raise err
        if check and proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise EdgeGhostError(f"command failed on {self.where} ({shlex.split(command)[0]}): {tail}")
        return proc

    def _scp(self, sources: list[str], dest: str, timeout_s: float) -> None:
        self._check()
        args = ["scp", "-q", "-r", *self.options(), *(["-P", str(self.port)] if self.port else []), *sources, dest]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise EdgeGhostError(f"copying to/from {self.where} did not finish within {timeout_s:.0f} s") from None
        if proc.returncode != 0:
            raise self._error(proc.stderr) or EdgeGhostError(
                f"copy to/from {self.where} failed: {(proc.stderr.strip().splitlines() or ['scp failed'])[-1]}"
            )

    def put(self, files: list[str | Path], remote_dir: str, *, timeout_s: float = 600) -> None:
        """Copy local files (or folders) into an existing remote folder."""
        self._scp([str(f) for f in files], f"{self.host}:{remote_dir}/", timeout_s)

    def get(self, remote_path: str, local_path: str | Path, *, timeout_s: float = 600) -> None:
        self._scp([f"{self.host}:{remote_path}"], str(local_path), timeout_s)
