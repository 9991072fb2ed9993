"""edgeghost device: check or prepare a Raspberry Pi (or any Linux board) over SSH."""

from __future__ import annotations

import argparse
import json

HELP = "check a device over SSH, or set it up (venv with numpy + LiteRT + onnxruntime, offline wheels)"


def add_ssh_arguments(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """The SSH options shared by `edgeghost device` and `edgeghost bench --device rpi4`."""
    g = p.add_argument_group("SSH (host keys are always verified against known_hosts)")
    g.add_argument("--host", required=required, help="USER@HOST (or an alias from ~/.ssh/config)")
    g.add_argument("--port", type=int, default=None, help="SSH port (default: 22 or the ssh config's)")
    g.add_argument("--identity", default=None, help="private key file (default: ssh's usual keys)")
    g.add_argument("--known-hosts", default=None, help="known_hosts file (default: ~/.ssh/known_hosts)")
    g.add_argument("--accept-new-host-key", action="store_true",
                   help="trust and record the host key on FIRST contact only; a changed key is still refused")
    g.add_argument("--remote-python", default=None,
                   help="Python command on the device; a launcher prefix is allowed (`taskset -c 0-3 python3`). "
                        "Default: ~/.edgeghost/venv/bin/python if it exists, else python3")


def ssh_target(args: argparse.Namespace):
    from ..runtime.ssh import SSHTarget

    return SSHTarget(host=args.host, port=args.port, identity=args.identity, known_hosts=args.known_hosts,
                     accept_new_host_key=args.accept_new_host_key)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("check", "setup"),
                   help="check: Python, runtimes and board facts; setup: create the venv and install the runtimes")
    add_ssh_arguments(p)
    p.add_argument("--venv", default="~/.edgeghost/venv", help="venv path on the device (default: %(default)s)")
    p.add_argument("--runtimes", default=None,
                   help="comma list of litert, onnxruntime, tflite_runtime (default: litert,onnxruntime on "
                        "aarch64; tflite_runtime on 32-bit armv7l)")
    p.add_argument("--wheels-dir", default=None, help="install these pre-downloaded wheels (no registry access)")
    p.add_argument("--online", action="store_true", help="let the device's pip download the packages itself")
    p.add_argument("--json", action="store_true", help="print the device report as JSON")


def _print_report(report: dict) -> None:
    dev = report["device"]
    rows = [
        ("python", f"{report['python']} ({report.get('python_command')})"),
        ("numpy", report["numpy"]),
        *((name, version or "not installed") for name, version in report["runtimes"].items()),
        ("board", dev.get("board") or "unknown (no /proc/device-tree/model)"),
        ("machine", f"{dev.get('machine')}, {dev.get('cpu_count')} cores, "
                    f"CPU parts {','.join(dev.get('cpu_parts') or [])}"),
        ("os", dev.get("os")),
        ("governor", dev.get("governor") or "unknown"),
        ("temperature", "unknown" if dev.get("temperature_c") is None else f"{dev['temperature_c']:.1f} °C"),
        ("throttled", dev.get("throttled") or "unknown (no vcgencmd)"),
    ]
    pad = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{pad}}  {v}")


def run(args: argparse.Namespace) -> int:
    from ..runtime.rpi4 import check_device, setup_device

    target = ssh_target(args)
    if args.action == "check":
        report = check_device(target, python=args.remote_python)
    else:
        runtimes = tuple(r.strip() for r in args.runtimes.split(",")) if args.runtimes else None
        report = setup_device(target, python=args.remote_python or "python3", venv=args.venv, runtimes=runtimes,
                              wheels_dir=args.wheels_dir, online=args.online)
        print(f"device ready: bench with  edgeghost bench --device rpi4 --host {args.host}"
              + (f" --port {args.port}" if args.port else ""))
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    return 0
