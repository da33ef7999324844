#!/usr/bin/env python3
"""Peer tools for the IMAP → IMAP benchmark: one one-way sync source → target with mbsync,
interimap, doveadm backup (dsync over imapc) and offlineimap3, timed, with the tool's peak RSS;
plus `verify_identical`, which says how far the target is from a byte-identical copy, and
`change_source`, the 1% change between a first run and a delta rerun.

Python 3 standard library, plus GNU time (`apt-get install time`) to read the peak RSS (see
`_measure` for why not wait4). Each `run_*` function writes its tool's config file in
`state_dir` (mode 0600: it holds the passwords, which never appear on a command line) and keeps
the tool's sync state there, so calling it again on the same `state_dir` measures a no-op rerun
or a rerun after changes. Each returns `(seconds, peak_rss_kb)` and raises ToolFailed (with the
tail of the tool's output, kept in `state_dir/TOOL.out`) when the tool fails. `run_tool` returns
the same plus the bytes each Dovecot logged for the run's sessions (`in=`/`out=` at logout) when
the endpoints name their log files.

Import it with importlib (the file name has a dash), or use the CLI: `run TOOL`, `verify`,
`change`; passwords come from files or environment variables, never from arguments.

What each tool needs and does (checked with Dovecot 2.3.19.1 on Debian 12):
- mbsync (isync 1.4.4): `Sync Pull`, `Create Near`, `Remove Near`, `Expunge Near`,
  `CopyArrivalDate yes`, `Patterns *`, `SyncState DIR/`; `SSLType None` and an explicit
  `AuthMechs PLAIN` (with no TLS its default `*` admits no plaintext mechanism). It adds an
  `X-TUID` header to every message it uploads (so no target message is byte-identical), drops
  keywords, and does not copy messages flagged \\Deleted.
- interimap 0.5.7: needs QRESYNC, LIST-EXTENDED, LIST-STATUS and UIDPLUS on both servers; both
  sections `type = imap`, `STARTTLS = NO`. It is bidirectional by design and has no one-way
  mode: the source is its [remote] side, the target its [local] side, and only discipline (no
  one touches the target between runs) keeps target changes (appends, flag edits, expunges)
  from flowing back into the source.
- doveadm backup: runs *in* the target Dovecot (its config, its user database, its mail
  location) and reads the source through an `imapc:` storage. The generated config includes the
  target's config and adds the `imapc_*` settings; `backup -R` makes the target a mirror of the
  source (it also deletes on the target what the source lacks). The target instance must be
  running: doveadm looks the user up through its auth-userdb socket.
- offlineimap3: two IMAP repositories, the source `readonly = True` and `createfolders = False`
  so nothing is written there; it is otherwise a two-way sync. It drops keywords, creates
  \\Noselect parents as real folders, and propagates a deletion with a plain EXPUNGE, which
  also removes every copied message that carries \\Deleted in that target folder.
"""

import argparse
import collections
import datetime
import email.utils
import hashlib
import imaplib
import json
import os
import random
import re
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field

TOOLS = ("mbsync", "interimap", "doveadm", "offlineimap")

# Messages per FETCH in verify_identical: 200 messages of the sample (20 KB on average, 200 KB
# at most) keep one response under a few MB while costing one round trip per 200 messages.
fetch_batch_max = 200

# How long to wait for Dovecot to log the logout lines of a finished run (the imap process
# writes them just after the client closes; normally within milliseconds).
log_settle_seconds_max = 3.0


@dataclass
class Endpoint:
    """An IMAP account on a loopback server, plaintext. `log` is the Dovecot log file (for the
    wire counters); `conf` is the Dovecot config file, needed for the target of doveadm."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    log: str | None = None
    conf: str | None = None


class ToolFailed(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# Running a tool and measuring it


@dataclass
class Run:
    tool: str
    seconds: float
    peak_rss_kb: int
    # Bytes as Dovecot logged them at logout, server's view: `in` = received from the tool,
    # `out` = sent to it. None when the endpoint has no log file.
    source_wire: dict | None = None
    target_wire: dict | None = None


# GNU time (Debian package `time`), used to read the tool's peak RSS; see _measure.
gnu_time = "/usr/bin/time"


def _measure(argv, state_dir, tool, env=None):
    """Runs argv to completion; returns (seconds, peak RSS in KB, exit code).

    Why not os.wait4 on the child: Linux keeps, in the rusage of a process, the RSS peak of
    the memory image it had before exec, and a child that Python forks (or vforks) starts
    with Python's image, so wait4 reports max(this script's own peak, the tool's peak):
    209 MB for `true` under a Python that once held 200 MB. GNU time forks from its own
    image of about 1 MB, so its %M is the tool's peak (the largest of the tool process and
    the descendants it reaped) to within 1 MB. Without GNU time, fall back to wait4 and
    return the figure as a negative number when it cannot be told from this script's peak."""
    log_path = os.path.join(state_dir, f"{tool}.out")
    rusage_path = os.path.join(state_dir, f"{tool}.rusage")
    use_time = os.access(gnu_time, os.X_OK)
    if use_time:
        argv_run = [gnu_time, "-q", "-f", "%M", "-o", rusage_path] + list(argv)
    else:
        argv_run = list(argv)
    with open(log_path, "ab") as out:
        out.write(f"\n=== {time.strftime('%F %T')} {shlex.join(argv)}\n".encode())
        out.flush()
        start = time.monotonic()
        child = subprocess.Popen(argv_run, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, env=env, cwd=state_dir)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if use_time:
        with open(rusage_path) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        try:
            rss = int(lines[-1])
        except (IndexError, ValueError):
            rss = -1  # killed before GNU time could report (its output says why)
    else:
        rss = usage.ru_maxrss
        if rss <= resource.getrusage(resource.RUSAGE_SELF).ru_maxrss:
            rss = -rss
    return seconds, rss, child.returncode


def _check(tool, state_dir, code, ok_codes=(0,), output_must_not_match=None):
    log_path = os.path.join(state_dir, f"{tool}.out")
    with open(log_path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 200_000))
        tail = f.read().decode(errors="replace")
    last = tail.rsplit("\n=== ", 1)[-1]
    bad = output_must_not_match and re.search(output_must_not_match, last, re.M)
    if code not in ok_codes or bad:
        lines = "\n".join(last.splitlines()[-25:])
        raise ToolFailed(f"{tool} exited with {code} (output in {log_path}):\n{lines}")


def _tool_env(state_dir):
    # A home of its own, so no tool reads the user's ~/.mbsyncrc, ~/.offlineimaprc or
    # ~/.config/interimap, and nothing is written outside the state directory.
    home = os.path.join(state_dir, "home")
    os.makedirs(home, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=home, LC_ALL="C.UTF-8")
    return env


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # in case it existed with a wider mode


def _setup(state_dir):
    state_dir = os.path.abspath(state_dir)
    os.makedirs(state_dir, exist_ok=True)
    os.chmod(state_dir, 0o700)
    return state_dir


# ---------------------------------------------------------------------------------------------
# mbsync


def _mbsync_quote(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mbsync_config(source, target, state_dir):
    sync_state = os.path.join(state_dir, "mbsync-state") + "/"
    os.makedirs(sync_state, exist_ok=True)
    parts = []
    for name, end in (("source", source), ("target", target)):
        parts.append(
            f"IMAPAccount {name}\n"
            f"Host {end.host}\n"
            f"Port {end.port}\n"
            f"User {_mbsync_quote(end.user)}\n"
            f"Pass {_mbsync_quote(end.password)}\n"
            # No TLS on loopback; with SSLType None the default AuthMechs `*` allows no
            # plaintext mechanism, so name one.
            "SSLType None\n"
            "AuthMechs PLAIN\n\n"
            f"IMAPStore {name}\n"
            f"Account {name}\n\n")
    parts.append(
        "Channel copy\n"
        "Far :source:\n"
        "Near :target:\n"
        "Patterns *\n"
        # Pull = New ReNew Delete Flags from far (source) to near (target) only.
        "Sync Pull\n"
        "Create Near\n"
        "Remove Near\n"
        "Expunge Near\n"
        "CopyArrivalDate yes\n"
        f"SyncState {sync_state}\n")
    path = os.path.join(state_dir, "mbsyncrc")
    _write_private(path, "".join(parts))
    return path


def mbsync_command(source, target, state_dir):
    state_dir = _setup(state_dir)
    return state_dir, ["mbsync", "-c", _mbsync_config(source, target, state_dir), "-a", "-q"]


def run_mbsync(source, target, state_dir):
    state_dir, argv = mbsync_command(source, target, state_dir)
    seconds, rss, code = _measure(argv, state_dir, "mbsync", _tool_env(state_dir))
    _check("mbsync", state_dir, code)
    return seconds, rss


# ---------------------------------------------------------------------------------------------
# interimap


def _interimap_config(source, target, state_dir):
    def section(end, compress):
        return (f"type = imap\n"
                f"host = {end.host}\n"
                f"port = {end.port}\n"
                f"username = {end.user}\n"
                f"password = {end.password}\n"
                "STARTTLS = NO\n"
                f"compress = {compress}\n")

    text = (f"database = {os.path.join(state_dir, 'interimap.db')}\n"
            # [local] is the target, [remote] the source. interimap syncs both ways whatever
            # the names; they only decide defaults (compress, the database's name).
            "\n[local]\n" + section(target, "NO") +
            "\n[remote]\n" + section(source, "NO"))
    path = os.path.join(state_dir, "interimap.conf")
    _write_private(path, text)
    return path


def interimap_command(source, target, state_dir):
    state_dir = _setup(state_dir)
    return state_dir, ["interimap", "--config=" + _interimap_config(source, target, state_dir),
                       "--quiet"]


def run_interimap(source, target, state_dir):
    state_dir, argv = interimap_command(source, target, state_dir)
    seconds, rss, code = _measure(argv, state_dir, "interimap", _tool_env(state_dir))
    _check("interimap", state_dir, code)
    return seconds, rss


# ---------------------------------------------------------------------------------------------
# doveadm backup (dsync) from an imapc: source into the target Dovecot


def _dovecot_quote(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _doveadm_config(source, target, state_dir):
    if not target.conf:
        raise ValueError("doveadm needs the target's Dovecot config (Endpoint.conf)")
    conf = os.path.abspath(target.conf)
    # The target's own config (its base_dir, so doveadm finds that instance's auth socket for
    # the user lookup; its mail_location and namespaces, which dsync writes into), plus the
    # imapc settings, which only the `imapc:` storage given on the command line reads.
    # imapc_features: rfc822.size and fetch-headers let dsync compare messages without
    # downloading bodies, modseq uses CONDSTORE, delay-login avoids logging in until needed.
    text = (f"!include {conf}\n"
            f"imapc_host = {source.host}\n"
            f"imapc_port = {source.port}\n"
            f"imapc_user = {source.user}\n"
            f"imapc_password = {_dovecot_quote(source.password)}\n"
            "imapc_ssl = no\n"
            "imapc_features = rfc822.size fetch-headers modseq delay-login\n")
    path = os.path.join(state_dir, "doveadm.conf")
    _write_private(path, text)
    return path


def doveadm_command(source, target, state_dir):
    state_dir = _setup(state_dir)
    conf = _doveadm_config(source, target, state_dir)
    # -R: reverse, the `imapc:` location is the master and the user's own mail the replica.
    return state_dir, ["doveadm", "-c", conf, "backup", "-R", "-u", target.user, "imapc:"]


def run_doveadm_backup(source, target, state_dir):
    """`target.conf` is the target Dovecot's config file and `target.user` the user whose mail
    is written. Needs the target Dovecot running: doveadm looks the user up through that
    instance's auth-userdb socket in its base_dir (stopped, it fails with exit code 75). It
    writes the target's mail files itself, next to the running instance (Dovecot's index
    locking covers that), so the target's IMAP log shows no session for it."""
    state_dir, argv = doveadm_command(source, target, state_dir)
    seconds, rss, code = _measure(argv, state_dir, "doveadm", _tool_env(state_dir))
    _check("doveadm", state_dir, code)
    return seconds, rss


# ---------------------------------------------------------------------------------------------
# offlineimap3


def _offlineimap_config(source, target, state_dir):
    def repository(name, end, extra):
        # Values go through ConfigParser interpolation: a literal % is written %%.
        return (f"[Repository {name}]\n"
                "type = IMAP\n"
                f"remotehost = {end.host}\n"
                f"remoteport = {end.port}\n"
                f"remoteuser = {end.user}\n"
                f"remotepass = {end.password.replace('%', '%%')}\n"
                "ssl = no\n"
                "starttls = no\n"
                "auth_mechanisms = PLAIN, LOGIN\n"
                + extra + "\n")

    text = ("[general]\n"
            "accounts = copy\n"
            f"metadata = {os.path.join(state_dir, 'offlineimap-meta')}\n"
            "ui = quiet\n\n"
            "[Account copy]\n"
            "localrepository = target\n"
            "remoterepository = source\n\n"
            # readonly: nothing is ever written to the source; createfolders: no folder is
            # created there. Together they make the two-way sync one-way.
            + repository("source", source, "readonly = True\ncreatefolders = False\n")
            + repository("target", target, ""))
    path = os.path.join(state_dir, "offlineimaprc")
    _write_private(path, text)
    return path


def offlineimap_command(source, target, state_dir):
    state_dir = _setup(state_dir)
    # -o: one sync, then exit. -u quiet: errors only.
    return state_dir, ["offlineimap", "-c", _offlineimap_config(source, target, state_dir),
                       "-o", "-u", "quiet"]


def run_offlineimap(source, target, state_dir):
    state_dir, argv = offlineimap_command(source, target, state_dir)
    seconds, rss, code = _measure(argv, state_dir, "offlineimap", _tool_env(state_dir))
    # offlineimap3 can exit 0 after a folder failed; its errors start with "ERROR".
    _check("offlineimap", state_dir, code, output_must_not_match=r"^\s*ERROR")
    return seconds, rss


RUNNERS = {
    "mbsync": run_mbsync,
    "interimap": run_interimap,
    "doveadm": run_doveadm_backup,
    "offlineimap": run_offlineimap,
}


# ---------------------------------------------------------------------------------------------
# Bytes on the wire, from Dovecot's log


_login_re = re.compile(r"imap-login: Info: Login: .*\bsession=<([^>]+)>")
_logout_re = re.compile(r"imap\([^)]*\)<\d+><([^>]+)>: Info: Disconnected: .*\bin=(\d+) out=(\d+)")


def _sessions(text):
    logins = set(_login_re.findall(text))
    logouts = {m[0]: (int(m[1]), int(m[2])) for m in _logout_re.findall(text)}
    return logins, logouts


def log_offset(log_path):
    """Where the next run's lines will start in a Dovecot log. Dovecot's log process writes
    lines a little after the event, so first wait until every session logged so far (in the
    last MB) has logged its logout: an earlier session's logout must not land in the next
    run's share of the log."""
    if not log_path or not os.path.exists(log_path):
        return 0
    deadline = time.monotonic() + log_settle_seconds_max
    while True:
        size = os.path.getsize(log_path)
        with open(log_path, "rb") as f:
            f.seek(max(0, size - 1_000_000))
            logins, logouts = _sessions(f.read(size).decode(errors="replace"))
        if logins <= set(logouts) or time.monotonic() > deadline:
            return size
        time.sleep(0.05)


def wire_bytes(log_path, offset):
    """Sessions and bytes Dovecot logged after `offset` in its log: the `in=N out=M` of each
    session that logged in after it (server's view: in = from the client, out = to the
    client). Waits briefly until each of those sessions has logged its logout."""
    deadline = time.monotonic() + log_settle_seconds_max
    time.sleep(0.1)  # the run's last lines may still be on their way to the log process
    while True:
        with open(log_path, "rb") as f:
            f.seek(offset)
            logins, logouts = _sessions(f.read().decode(errors="replace"))
        if logins <= set(logouts) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # Only sessions that began in this run; a logout of an older one is not ours.
    ours = [logouts[s] for s in logins if s in logouts]
    return {"sessions": len(ours), "unfinished": len(logins - set(logouts)),
            "in": sum(v[0] for v in ours), "out": sum(v[1] for v in ours)}


def run_tool(tool, source, target, state_dir):
    """Runs one tool once; returns a Run with time, peak RSS and, where the endpoints name
    their log files, the wire counters of both servers."""
    offsets = (log_offset(source.log), log_offset(target.log))
    seconds, rss = RUNNERS[tool](source, target, state_dir)
    run = Run(tool, seconds, rss)
    if source.log:
        run.source_wire = wire_bytes(source.log, offsets[0])
    if target.log:
        run.target_wire = wire_bytes(target.log, offsets[1])
    return run


# ---------------------------------------------------------------------------------------------
# IMAP helpers (imaplib)


def _quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A bound on every socket operation of verify_identical and change_source, so a stuck server
# ends the check instead of hanging it; one FETCH batch takes well under a second on loopback.
imap_timeout_seconds = 120


def connect(end):
    conn = imaplib.IMAP4(end.host, end.port, timeout=imap_timeout_seconds)
    conn.login(end.user, end.password)
    return conn


_list_re = re.compile(rb'\((?P<attrs>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')


def list_folders(conn):
    """{name: (attributes, delimiter)} of every folder LIST "" "*" returns; names as the server
    sends them (modified UTF-7), unquoted; attributes lower-cased."""
    typ, data = conn.list('""', "*")
    if typ != "OK":
        raise RuntimeError(f"LIST failed: {data}")
    folders = {}
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # name sent as a literal
            head, raw = item
            m = _list_re.match(head.rsplit(b" {", 1)[0] + b" x")
        else:
            m = _list_re.match(item)
            raw = m.group("name")
            if raw.startswith(b'"'):
                raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        delimiter = m.group("delim")
        delimiter = None if delimiter == b"NIL" else re.sub(rb"\\(.)", rb"\1", delimiter[1:-1])
        folders[raw.decode("ascii", "replace")] = (
            m.group("attrs").decode().lower().split(),
            delimiter.decode() if delimiter else None)
    return folders


def _folder_key(name, delimiter):
    """A folder's name as its hierarchy levels, so that "Archive.2024" on a Maildir++ server
    (delimiter ".") and "Archive/2024" on a LAYOUT=fs one (delimiter "/") are the same folder.
    With equal delimiters on both sides this is the name as-is."""
    return tuple(name.split(delimiter)) if delimiter else (name,)


def _selectable(attrs):
    return "\\noselect" not in attrs and "\\nonexistent" not in attrs


def _selectable_folders(conn):
    """{folder key: name} of the folders that can be opened."""
    return {_folder_key(name, delimiter): name
            for name, (attrs, delimiter) in list_folders(conn).items() if _selectable(attrs)}


_fetch_uid_re = re.compile(rb"\bUID (\d+)")
_fetch_flags_re = re.compile(rb"\bFLAGS \(([^)]*)\)")
_fetch_date_re = re.compile(rb'\bINTERNALDATE "([^"]+)"')


def _parse_internaldate(text):
    return datetime.datetime.strptime(text.decode(), "%d-%b-%Y %H:%M:%S %z").timestamp()


def fetch_folder(conn, folder):
    """Yields (uid, flags, internaldate, bytes) for every message of a folder, opened read-only
    (EXAMINE: no \\Recent consumed, BODY.PEEK sets no \\Seen), fetch_batch_max at a time.
    Flags are a sorted tuple without \\Recent."""
    typ, data = conn.select(_quote(folder), readonly=True)
    if typ != "OK":
        raise RuntimeError(f"EXAMINE {folder} failed: {data}")
    exists = int(data[0])
    for low in range(1, exists + 1, fetch_batch_max):
        high = min(exists, low + fetch_batch_max - 1)
        typ, data = conn.fetch(f"{low}:{high}", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
        if typ != "OK":
            raise RuntimeError(f"FETCH in {folder} failed: {data}")
        # A message arrives as (b'N (UID .. FLAGS (..) INTERNALDATE ".." BODY[] {size}',
        # bytes) then b')' or b' FLAGS (..))' when the server puts items after the body.
        pending = None
        for item in data + [None]:
            if isinstance(item, tuple):
                if pending:
                    yield _finish(*pending)
                pending = [item[0], item[1]]
            elif pending is not None:
                if item:
                    pending[0] += b" " + item
                yield _finish(*pending)
                pending = None


def _finish(meta, body):
    uid = int(_fetch_uid_re.search(meta).group(1))
    flags = _fetch_flags_re.search(meta).group(1).decode().split()
    flags = tuple(sorted(f for f in flags if f.lower() != "\\recent"))
    date_match = _fetch_date_re.search(meta)
    date = _parse_internaldate(date_match.group(1)) if date_match else None
    return uid, flags, date, body


# ---------------------------------------------------------------------------------------------
# verify_identical


def _header_lines(message):
    """The header fields of a message as (name, start, end) byte ranges, folded lines
    included."""
    end = message.find(b"\r\n\r\n")
    newline = b"\r\n"
    if end < 0 or (0 <= message.find(b"\n\n") < end):
        end, newline = message.find(b"\n\n"), b"\n"
    if end < 0:
        return
    pos = 0
    while pos < end + len(newline):
        stop = message.find(newline, pos)
        while stop >= 0 and message[stop + len(newline):stop + len(newline) + 1] in (b" ", b"\t"):
            stop = message.find(newline, stop + len(newline))
        if stop < 0 or stop > end:
            stop = end
        field_end = stop + len(newline)
        name = message[pos:field_end].split(b":", 1)[0].decode(errors="replace")
        yield name, pos, field_end
        pos = field_end


def _is_keyword(flag):
    return not flag.startswith("\\")


@dataclass
class Verdict:
    folders_source: int = 0
    folders_target: int = 0
    folders_missing: list = field(default_factory=list)
    folders_extra: list = field(default_factory=list)
    messages_source: int = 0
    messages_target: int = 0
    missing: int = 0  # source messages with no copy on the target (exact or altered)
    duplicates: int = 0  # surplus target copies of a source message
    unexpected: int = 0  # target messages matching no source message (e.g. deleted there since)
    altered: int = 0  # target copies equal to a source message once one header line is removed
    altered_headers: dict = field(default_factory=dict)  # header name → count
    flags_differing: int = 0  # pairs whose system flags (\Seen, \Flagged, ...) differ
    keywords_dropped: int = 0  # pairs where a source keyword is missing on the target
    dropped_keywords: dict = field(default_factory=dict)  # keyword → count
    keywords_added: int = 0  # pairs where the target has a keyword the source lacks
    dates_differing: int = 0  # pairs whose INTERNALDATE differs
    by_folder: dict = field(default_factory=dict)  # folder → {count name: value}, nonzero only

    @property
    def identical(self):
        return not (self.folders_missing or self.folders_extra or self.missing
                    or self.duplicates or self.unexpected or self.altered
                    or self.flags_differing or self.keywords_dropped or self.keywords_added
                    or self.dates_differing)

    def summary(self):
        if self.identical:
            return f"identical ({self.messages_target} messages)"
        parts = []
        for name in ("missing", "duplicates", "unexpected", "altered", "flags_differing",
                     "keywords_dropped", "keywords_added", "dates_differing"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)}")
        if self.folders_missing:
            parts.append(f"folders_missing={len(self.folders_missing)}")
        if self.folders_extra:
            parts.append(f"folders_extra={len(self.folders_extra)}")
        if self.altered_headers:
            parts.append("altered_by=" + ",".join(sorted(self.altered_headers)))
        if self.dropped_keywords:
            parts.append("dropped=" + ",".join(sorted(self.dropped_keywords)))
        return " ".join(parts)


_COUNTS = ("messages_source", "messages_target", "missing", "duplicates", "unexpected", "altered",
           "flags_differing", "keywords_dropped", "keywords_added", "dates_differing")


def _pair_and_compare(source_meta, target_meta, verdict):
    """Pairs copies of one message (lists of (flags, date)) and counts flag and date
    differences. Exact matches first, then equal flags, then anything, so two copies with
    different flags are not counted twice."""
    source_meta, target_meta = list(source_meta), list(target_meta)
    pairs = []
    for key in (lambda m: m, lambda m: m[0], lambda m: 0):
        rest = []
        for s in source_meta:
            for i, t in enumerate(target_meta):
                if key(s) == key(t):
                    pairs.append((s, target_meta.pop(i)))
                    break
            else:
                rest.append(s)
        source_meta = rest
    for (s_flags, s_date), (t_flags, t_date) in pairs:
        s_system = {f.lower() for f in s_flags if not _is_keyword(f)}
        t_system = {f.lower() for f in t_flags if not _is_keyword(f)}
        if s_system != t_system:
            verdict.flags_differing += 1
        s_keywords = {f for f in s_flags if _is_keyword(f)}
        t_keywords = {f for f in t_flags if _is_keyword(f)}
        if s_keywords - t_keywords:
            verdict.keywords_dropped += 1
            for k in s_keywords - t_keywords:
                verdict.dropped_keywords[k] = verdict.dropped_keywords.get(k, 0) + 1
        if t_keywords - s_keywords:
            verdict.keywords_added += 1
        if s_date is not None and t_date is not None and s_date != t_date:
            verdict.dates_differing += 1


def verify_identical(source, target):
    """Compares every folder of the source with the folder of the same name on the target
    (names as-is, hierarchy delimiters mapped when the two servers use different ones): the
    multiset of (sha256 of the full message bytes, sorted flags without \\Recent) plus the
    INTERNALDATE. Returns a Verdict of counts. A target message that is not byte-identical but
    equals a source message after removing one header line (mbsync's X-TUID) counts as altered,
    not as missing + unexpected."""
    verdict = Verdict()
    source_conn, target_conn = connect(source), connect(target)
    try:
        source_folders = _selectable_folders(source_conn)
        target_folders = _selectable_folders(target_conn)
        verdict.folders_source, verdict.folders_target = len(source_folders), len(target_folders)
        verdict.folders_missing = sorted(source_folders[k] for k in
                                         set(source_folders) - set(target_folders))
        verdict.folders_extra = sorted(target_folders[k] for k in
                                       set(target_folders) - set(source_folders))
        for key in sorted(set(source_folders) | set(target_folders)):
            folder = "/".join(key)  # for by_folder only
            before = {k: getattr(verdict, k) for k in _COUNTS}
            # sha → [(flags, date)] per side.
            source_items = collections.defaultdict(list)
            if key in source_folders:
                for _, flags, date, body in fetch_folder(source_conn, source_folders[key]):
                    source_items[hashlib.sha256(body).digest()].append((flags, date))
                    verdict.messages_source += 1
            target_items = collections.defaultdict(list)
            strangers = []  # (flags, date, header name, source sha) of non-identical messages
            if key in target_folders:
                for _, flags, date, body in fetch_folder(target_conn, target_folders[key]):
                    verdict.messages_target += 1
                    digest = hashlib.sha256(body).digest()
                    if digest in source_items:
                        target_items[digest].append((flags, date))
                        continue
                    # Not a source message: is it one with a header line added?
                    for name, start, end in _header_lines(body):
                        stripped = hashlib.sha256(body[:start] + body[end:]).digest()
                        if stripped in source_items:
                            strangers.append((flags, date, name, stripped))
                            break
                    else:
                        strangers.append((flags, date, None, None))
            # Altered copies stand in for the source message they were made from, when that
            # message has no exact copy left to pair with.
            surplus = {d: len(v) - len(target_items.get(d, ())) for d, v in source_items.items()}
            for flags, date, name, digest in strangers:
                if digest is not None and surplus[digest] > 0:
                    surplus[digest] -= 1
                    verdict.altered += 1
                    verdict.altered_headers[name] = verdict.altered_headers.get(name, 0) + 1
                    target_items[digest].append((flags, date))
                elif digest is not None:
                    verdict.duplicates += 1
                else:
                    verdict.unexpected += 1
            for digest, source_meta in source_items.items():
                target_meta = target_items.get(digest, [])
                verdict.missing += max(0, len(source_meta) - len(target_meta))
                verdict.duplicates += max(0, len(target_meta) - len(source_meta))
                _pair_and_compare(source_meta, target_meta, verdict)
            changed = {k: getattr(verdict, k) - v for k, v in before.items()
                       if getattr(verdict, k) != v and k not in ("messages_source",
                                                                  "messages_target")}
            if changed:
                verdict.by_folder[folder] = changed
    finally:
        for conn in (source_conn, target_conn):
            try:
                conn.logout()
            except Exception:
                pass
    return verdict


# ---------------------------------------------------------------------------------------------
# The change between a first run and a delta rerun


def change_source(source, fraction=0.01, seed=1):
    """Changes about `fraction` of the source's messages through IMAP, in three equal parts:
    appends new messages (to INBOX), toggles \\Flagged on existing ones, expunges existing ones
    (at least one of each). Deterministic for a given seed and mailbox. Returns the counts."""
    rng = random.Random(seed)
    conn = connect(source)
    try:
        folders = sorted(_selectable_folders(conn).values())
        messages = []  # (folder, uid, flags)
        for folder in folders:
            typ, data = conn.select(_quote(folder), readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)") if int(data[0]) else ("OK", [])
            for item in data:
                if item:
                    uid = int(_fetch_uid_re.search(item).group(1))
                    flags = _fetch_flags_re.search(item).group(1).decode().split()
                    messages.append((folder, uid, flags))
        changes = max(3, round(len(messages) * fraction))
        appends = flag_changes = changes // 3
        deletes = changes - appends - flag_changes
        chosen = rng.sample(messages, flag_changes + deletes)
        to_flag, to_delete = chosen[:flag_changes], chosen[flag_changes:]
        stamp = int(time.time())
        for i in range(appends):
            body = (f"From: Peer Bench <bench@example.org>\r\n"
                    f"To: bench@example.org\r\n"
                    f"Subject: delta {seed}-{i}\r\n"
                    f"Date: {email.utils.formatdate(stamp, localtime=False)}\r\n"
                    f"Message-ID: <delta-{seed}-{i}-{stamp}@peers.example>\r\n"
                    f"\r\n"
                    f"Appended between runs ({i}).\r\n").encode()
            typ, data = conn.append("INBOX", "(\\Seen)", imaplib.Time2Internaldate(stamp), body)
            if typ != "OK":
                raise RuntimeError(f"APPEND failed: {data}")
        for folder, uid, old in to_flag:
            conn.select(_quote(folder))
            op = "-FLAGS.SILENT" if "\\Flagged" in old else "+FLAGS.SILENT"
            conn.uid("STORE", str(uid), op, "(\\Flagged)")
        for folder, uid, _ in to_delete:
            conn.select(_quote(folder))
            conn.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")
            conn.uid("EXPUNGE", str(uid))  # UIDPLUS: expunges only this message
        return {"appended": appends, "flagged": flag_changes, "deleted": deletes}
    finally:
        conn.logout()


# ---------------------------------------------------------------------------------------------
# CLI


def _endpoint(args, side):
    host, _, port = getattr(args, side).rpartition(":")
    password = os.environ.get(f"IMAP_PEERS_{side.upper()}_PASSWORD")
    password_file = getattr(args, f"{side}_password_file")
    if password_file:
        with open(password_file) as f:
            password = f.read().rstrip("\n")
    if password is None:
        sys.exit(f"no password for the {side}: give --{side}-password-file or set "
                 f"IMAP_PEERS_{side.upper()}_PASSWORD")
    return Endpoint(host or "127.0.0.1", int(port), getattr(args, f"{side}_user"), password,
                    log=getattr(args, f"{side}_log"), conf=getattr(args, f"{side}_conf"))


def _add_endpoint_args(parser, side, required=True):
    parser.add_argument(f"--{side}", required=required, metavar="HOST:PORT",
                        help=f"the {side} server (plaintext IMAP)")
    parser.add_argument(f"--{side}-user", required=required, metavar="USER")
    parser.add_argument(f"--{side}-password-file", metavar="FILE",
                        help=f"file holding the {side} password (or set "
                             f"IMAP_PEERS_{side.upper()}_PASSWORD); never on the command line")
    parser.add_argument(f"--{side}-log", metavar="FILE",
                        help=f"the {side} Dovecot's log, for the in=/out= wire counters")
    parser.add_argument(f"--{side}-conf", metavar="FILE",
                        help=f"the {side} Dovecot's config (doveadm needs the target's)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="one sync source → target with one peer tool",
                         description="Runs one sync and prints one JSON line: tool, seconds, "
                                     "peak_rss_kb and, with --source-log/--target-log, the "
                                     "bytes each Dovecot logged.")
    run.add_argument("tool", choices=TOOLS)
    _add_endpoint_args(run, "source")
    _add_endpoint_args(run, "target")
    run.add_argument("--state", required=True, metavar="DIR",
                     help="configs and sync state; reuse it for a no-op or delta rerun")
    run.add_argument("--print-command", action="store_true",
                     help="write the config and print the command instead of running it")

    verify = sub.add_parser("verify", help="compare every folder of source and target")
    _add_endpoint_args(verify, "source")
    _add_endpoint_args(verify, "target")

    change = sub.add_parser("change", help="append, flag and expunge about 1%% on the source")
    _add_endpoint_args(change, "source")
    change.add_argument("--fraction", type=float, default=0.01)
    change.add_argument("--seed", type=int, default=1)

    args = parser.parse_args(argv)
    if args.command == "run":
        source, target = _endpoint(args, "source"), _endpoint(args, "target")
        if args.print_command:
            builders = {"mbsync": mbsync_command, "interimap": interimap_command,
                        "doveadm": doveadm_command, "offlineimap": offlineimap_command}
            print(shlex.join(builders[args.tool](source, target, args.state)[1]))
            return
        print(json.dumps(run_tool(args.tool, source, target, args.state).__dict__))
    elif args.command == "verify":
        verdict = verify_identical(_endpoint(args, "source"), _endpoint(args, "target"))
        print(json.dumps(dict(verdict.__dict__, identical=verdict.identical,
                              summary=verdict.summary())))
        sys.exit(0 if verdict.identical else 1)
    elif args.command == "change":
        print(json.dumps(change_source(_endpoint(args, "source"), args.fraction, args.seed)))


if __name__ == "__main__":
    main()
