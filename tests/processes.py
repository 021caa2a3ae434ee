"""Helpers of the search and reliability tests: run the search CLI in this process, read its
Optuna journal, and stop the processes a test started by their own pid / session id (never
by name)."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import optuna

from tune_vqvae import search
from tune_vqvae.sessions import kill_session, session_pids  # noqa: F401  (the tests' helpers)
from tune_vqvae.vocab import JOURNAL_FILE


def run(argv) -> int:
    """The search's main in this process: its exit status (2 for bad input)."""
    try:
        return search.main(argv)
    except SystemExit as e:
        return e.code


def study(exp: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=search.journal_storage(exp / JOURNAL_FILE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def search_env(ray_tmp: str) -> dict:
    # RAY_TMPDIR: the search's local Ray keeps its session files (and its address file) in a
    # directory of its own, so it never meets another Ray on this machine.
    return {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": ray_tmp}


def _listening_inodes() -> dict[int, str]:
    """Socket inode -> 'address:port' of every listening TCP socket (IPv4 and IPv6)."""
    out = {}
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            hex_ip, hex_port = fields[1].split(":")
            raw = bytes.fromhex(hex_ip)  # the kernel's words are little-endian, 4 bytes each
            ip = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4)))
            out[int(fields[9])] = f"{ip}:{int(hex_port, 16)}"
    return out


def listening_addresses(pids: list[int]) -> dict[str, int]:
    """'address:port' -> pid of the TCP sockets these processes listen on."""
    inodes, found = _listening_inodes(), {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                found[inodes[int(target[8:-1])]] = pid
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)
