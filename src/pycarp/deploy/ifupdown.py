"""``pycarp render ifupdown``: hooks that run pycarp for Debian's ucarp stanzas.

Debian's ucarp package reads ``ucarp-*`` options of /etc/network/interfaces
in /etc/network/if-up.d/ucarp. These two POSIX sh hooks read the same
IF_UCARP_* variables: if-up.d/pycarp starts one daemonized pycarp per stanza
(interface and vid) with the options Debian's hook gives ucarp, and
if-down.d/pycarp stops those of the interface with SIGTERM, a graceful
hand-over, where Debian leaves ucarp running. Values are checked by pycarp itself; the hooks only
check what names files (the vid must be digits).

Each pycarp has the control socket pycarp gives it by default
(``<run dir>/<interface>-<vid>.sock``: ``pycarp status`` lists it) and a
pidfile beside it; the run directory is computed as pycarp.platform.rundir
does (one per network namespace). With an ``<interface>:ucarp`` stanza, as
in Debian's README.Debian, the hooks are also the default up and down
scripts: they bring that stanza up and down, as /usr/share/ucarp/vip-up and
vip-down do. Without one, pycarp plumbs the VIP itself.
"""

from __future__ import annotations

import os
import shlex

from pycarp.config.settings import SOCKET_SUFFIX
from pycarp.deploy.common import STOP_TIMEOUT, RenderError
from pycarp.deploy.scripts import write_scripts
from pycarp.platform.rundir import INITIAL_NETNS_INODE, LINUX_RUN_DIR, NAMED_NETNS_DIR

__all__ = [
    "DEFAULT_IFUPDOWN_DIR",
    "HOOK_PATHS",
    "READY_WAIT",
    "debian_hook_warning",
    "render_ifupdown",
    "write_ifupdown",
]

DEFAULT_IFUPDOWN_DIR = "/etc/network"
HOOK_PATHS = ("if-up.d/pycarp", "if-down.d/pycarp")
READY_WAIT = 10  # seconds for a started pycarp to answer on its control socket
DEBIAN_UCARP = "/usr/sbin/ucarp"

# What both hooks share: messages, the stanza's file names, finding its daemon.
_COMMON = r"""say() {
    echo "$LABEL: ${IFACE:-?}: $*" >&2
}

fail() {
    say "$*"
    exit 1
}

# This network namespace's run directory, as pycarp computes it
# (pycarp.platform.rundir): a directory per namespace but the machine's own.
run_dir() {
    own=$(stat -L -c %i /proc/self/ns/net 2>/dev/null) || own=
    init=$(stat -L -c %i /proc/1/ns/net 2>/dev/null) || init=
    if [ -z "$own" ] || [ "$own" = "$init" ]; then
        echo @RUN_DIR@
    elif [ -n "$init" ]; then
        echo "@RUN_DIR@/netns-$own"
    else
        # pid 1 not ours to look at: the machine's own, unless it is an `ip netns` one
        if [ "$own" != @INITIAL_INODE@ ]; then
            for ns in @NAMED_NETNS@/*; do
                if [ "$(stat -L -c %i "$ns" 2>/dev/null)" = "$own" ]; then
                    echo "@RUN_DIR@/netns-$own"
                    return
                fi
            done
        fi
        echo @RUN_DIR@
    fi
}

# 0 if the stanza names files we can use: a ucarp stanza with a vid in digits;
# exits 0 for a stanza that is not about ucarp at all (lo, --all, ...).
stanza() {
    if [ -z "$IF_UCARP_VID$IF_UCARP_VIP$IF_UCARP_PASSWORD" ]; then
        exit 0
    fi
    case $IFACE in
        '' | */*) fail "IFACE '$IFACE' is not an interface name" ;;
    esac
    case $IF_UCARP_VID in
        '' | *[!0-9]*) return 1 ;;
    esac
    RUN=$(run_dir)
    SOCKET="$RUN/$IFACE-$IF_UCARP_VID@SOCKET_SUFFIX@"
    PIDFILE="$RUN/ifupdown-$IFACE-$IF_UCARP_VID.pid"
    return 0
}

# 0 if process $1 is this stanza's pycarp: its command line names our socket.
ours() {
    case $1 in
        '' | *[!0-9]*) return 1 ;;
    esac
    case " $(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") " in
        *" --control-socket=$SOCKET "*) return 0 ;;
    esac
    return 1
}

# The pid in the pidfile if it is ours, else every process that is (no pidfile yet).
stanza_pids() {
    if [ -f "$PIDFILE" ] && ours "$(cat "$PIDFILE")"; then
        cat "$PIDFILE"
        return
    fi
    for dir in /proc/[0-9]*; do
        if ours "${dir#/proc/}"; then
            echo "${dir#/proc/}"
        fi
    done
}

# SIGTERM to the pids in $1 (a graceful hand-over), then wait up to $2 seconds;
# 0 if they are gone, else 1 (SIGKILLed).
# shellcheck disable=SC2086 # $1 and $alive are pids: split on purpose
stop_pids() {
    kill -TERM $1 2>/dev/null
    end=$(($(date +%s) + $2))
    while :; do
        alive=
        for pid in $1; do
            if kill -0 "$pid" 2>/dev/null; then
                alive="$alive $pid"
            fi
        done
        if [ -z "$alive" ]; then
            return 0
        fi
        if [ "$(date +%s)" -ge "$end" ]; then
            kill -KILL $alive 2>/dev/null
            say "pycarp (pid$alive) still ran $2 s after SIGTERM: killed"
            return 1
        fi
        sleep 0.1
    done
}
"""

_IF_UP = r"""#!/bin/sh
# Rendered by 'pycarp render ifupdown' (docs/deploy.md, "Debian's ucarp stanzas").
# ifupdown runs it after bringing an interface up, with the stanza's options in
# IF_* variables. For a stanza with ucarp-vid, ucarp-vip and ucarp-password it
# starts pycarp with the options Debian's /etc/network/if-up.d/ucarp gives ucarp.
#
# Also the default up script of a stanza that has an <interface>:ucarp stanza,
# as Debian's /usr/share/ucarp/vip-up: pycarp runs it as "<this> <interface> <vip>".
if [ $# -ge 2 ]; then
    exec ifup "$1:ucarp"
fi
LABEL=if-up.d/pycarp
PYCARP=@PYCARP@
HOOKS=@HOOKS@
READY_WAIT=@READY_WAIT@
@COMMON@
# 0 for a yes, 1 for a no ($1 the option, $2 its value); anything else fails.
is_yes() {
    case $2 in
        [Yy][Ee][Ss] | [Oo][Nn] | [Tt][Rr][Uu][Ee] | 1) return 0 ;;
        [Nn][Oo] | [Oo][Ff][Ff] | [Ff][Aa][Ll][Ss][Ee] | 0) return 1 ;;
    esac
    fail "$1: '$2' is not yes or no (nor on/off, true/false, 1/0)"
}

if [ -z "$IF_UCARP_VID$IF_UCARP_VIP$IF_UCARP_PASSWORD" ]; then
    exit 0  # not a ucarp stanza (nor lo, nor ifup -a's --all)
fi
missing=
[ -n "$IF_UCARP_VID" ] || missing="$missing ucarp-vid"
[ -n "$IF_UCARP_VIP" ] || missing="$missing ucarp-vip"
[ -n "$IF_UCARP_PASSWORD" ] || missing="$missing ucarp-password"
if [ -n "$missing" ]; then
    fail "missing$missing (a ucarp stanza needs ucarp-vid, ucarp-vip and ucarp-password)"
fi
if ! stanza; then
    fail "ucarp-vid: '$IF_UCARP_VID' is not a number"
fi
SRCIP=${IF_ADDRESS%%/*}
if [ -z "$SRCIP" ]; then
    fail "no address: pycarp advertises from the stanza's own address" \
        "(the address of an inet static stanza)"
fi
if [ -x "$HOOKS/if-up.d/ucarp" ] && [ -x @DEBIAN_UCARP@ ]; then
    fail "Debian's $HOOKS/if-up.d/ucarp starts ucarp for this stanza too:" \
        "apt-get remove ucarp (its hook then does nothing)"
fi
if [ -f "$PIDFILE" ]; then
    if ours "$(cat "$PIDFILE")"; then
        say "pycarp for ucarp-vid $IF_UCARP_VID already runs (pid $(cat "$PIDFILE"))"
        exit 0
    fi
    rm -f "$PIDFILE"
fi

# Debian's hook: ucarp -i $IFACE -s $IF_ADDRESS -B -z -v ... -p ... -a ... -u ... -d ...
set -- --interface="$IFACE" --srcip="$SRCIP" --vhid="$IF_UCARP_VID" --addr="$IF_UCARP_VIP" \
    --daemonize --shutdown --control-socket="$SOCKET"
if [ -n "$IF_UCARP_ADVSKEW" ]; then
    set -- "$@" --advskew="$IF_UCARP_ADVSKEW"
fi
if [ -n "$IF_UCARP_ADVBASE" ]; then
    set -- "$@" --advbase="$IF_UCARP_ADVBASE"
fi
if [ -n "$IF_UCARP_DEADRATIO" ]; then
    set -- "$@" --deadratio="$IF_UCARP_DEADRATIO"
fi
if [ -n "$IF_UCARP_MASTER" ] && is_yes ucarp-master "$IF_UCARP_MASTER"; then
    set -- "$@" --preempt
fi
if [ -n "$IF_UCARP_NOMCAST" ] && is_yes ucarp-nomcast "$IF_UCARP_NOMCAST"; then
    set -- "$@" --nomcast
fi
if [ -n "$IF_UCARP_XPARAM" ]; then
    set -- "$@" --xparam="$IF_UCARP_XPARAM"
fi
if command -v ifquery >/dev/null 2>&1 && ifquery "$IFACE:ucarp" >/dev/null 2>&1; then
    # Debian's way: the VIP is the stanza $IFACE:ucarp, brought up and down
    set -- "$@" --upscript="${IF_UCARP_UPSCRIPT:-$HOOKS/if-up.d/pycarp}" \
        --downscript="${IF_UCARP_DOWNSCRIPT:-$HOOKS/if-down.d/pycarp}"
elif [ -n "$IF_UCARP_UPSCRIPT" ] && [ -n "$IF_UCARP_DOWNSCRIPT" ]; then
    set -- "$@" --upscript="$IF_UCARP_UPSCRIPT" --downscript="$IF_UCARP_DOWNSCRIPT"
elif [ -n "$IF_UCARP_UPSCRIPT$IF_UCARP_DOWNSCRIPT" ]; then
    fail "give both ucarp-upscript and ucarp-downscript, or neither" \
        "(pycarp then adds and removes ucarp-vip itself)"
fi

# A clean environment: the password goes in PYCARP_PASSWORD (not in ps), and
# nothing else of the stanza's reaches the daemon or its scripts.
if ! env -i PATH="$PATH" PYCARP_PASSWORD="$IF_UCARP_PASSWORD" "$PYCARP" "$@"; then
    fail "pycarp did not start for ucarp-vid $IF_UCARP_VID (its --vhid, --addr, --srcip" \
        "are ucarp-vid, ucarp-vip, address; --advskew is ucarp-advskew, and so on)"
fi
# It checked everything and daemonized; its control socket gives its pid.
end=$(($(date +%s) + READY_WAIT))
while :; do
    pid=$(env -i PATH="$PATH" "$PYCARP" status --json --control-socket "$SOCKET" 2>/dev/null |
        sed -n 's/^ *"pid": \([0-9][0-9]*\),$/\1/p' | head -n 1)
    if [ -n "$pid" ]; then
        break
    fi
    if [ "$(date +%s)" -ge "$end" ]; then
        pids=$(stanza_pids)
        if [ -n "$pids" ]; then
            stop_pids "$pids" @STOP_TIMEOUT@
        fi
        fail "pycarp started but did not answer on $SOCKET within $READY_WAIT s" \
        "(its log: syslog, facility daemon)"
    fi
    sleep 0.2
done
echo "$pid" >"$PIDFILE.tmp" && mv -f "$PIDFILE.tmp" "$PIDFILE"
if [ "$VERBOSITY" = 1 ]; then
    say "pycarp (pid $pid) runs ucarp-vid $IF_UCARP_VID, control socket $SOCKET"
fi
exit 0
"""

_IF_DOWN = r"""#!/bin/sh
# Rendered by 'pycarp render ifupdown' (docs/deploy.md, "Debian's ucarp stanzas").
# ifupdown runs it before taking an interface down. It stops the pycarps that
# if-up.d/pycarp started for the interface's stanzas with SIGTERM: a MASTER
# hands the VIP over to its peer before it lets go of it.
#
# Also the default down script of a stanza that has an <interface>:ucarp stanza,
# as Debian's /usr/share/ucarp/vip-down: pycarp runs it as "<this> <interface> <vip>".
if [ $# -ge 2 ]; then
    exec ifdown "$1:ucarp"
fi
LABEL=if-down.d/pycarp
STOP_TIMEOUT=@STOP_TIMEOUT@
@COMMON@
case $IFACE in
    '' | */*) exit 0 ;;
esac
RUN=$(run_dir)
# After the first stanza's pre-down hooks ifupdown flushes the interface's IPv4
# addresses and takes its link down: the pycarps of all its stanzas hand over
# now, at once, while they can still advertise.
pids=
files=
for file in "$RUN/ifupdown-$IFACE-"*.pid; do
    vid=${file##*-}
    vid=${vid%.pid}
    case $vid in
        '' | *[!0-9]*) continue ;;
    esac
    if [ "$file" != "$RUN/ifupdown-$IFACE-$vid.pid" ]; then
        continue # an interface whose name is ours, a dash and more
    fi
    files="$files $file"
    SOCKET="$RUN/$IFACE-$vid@SOCKET_SUFFIX@"
    pid=$(cat "$file" 2>/dev/null)
    if ours "$pid"; then
        pids="$pids $pid"
    fi
done
# This stanza's pycarp without a pidfile (if-up.d/pycarp did not finish): by its socket.
if [ -n "$IF_UCARP_VID" ] && stanza && [ ! -f "$PIDFILE" ]; then
    pids="$pids $(stanza_pids)"
fi
status=0
case $pids in
    *[0-9]*)
        stop_pids "$pids" "$STOP_TIMEOUT" || status=1
        if [ "$VERBOSITY" = 1 ]; then
            say "stopped pycarp (pid$pids)"
        fi
        ;;
esac
# shellcheck disable=SC2086 # the run directory and interface names have no spaces
rm -f $files
case $RUN in
    */netns-*) rmdir "$RUN" 2>/dev/null ;; # as pycarp leaves it: gone once unused
esac
exit $status
"""


def render_ifupdown(*, program: str, directory: str = DEFAULT_IFUPDOWN_DIR) -> dict[str, str]:
    """The hooks by path under ``directory`` (where they will be: their own path is in them)."""
    common = (
        _COMMON.replace("@RUN_DIR@", LINUX_RUN_DIR)
        .replace("@NAMED_NETNS@", NAMED_NETNS_DIR)
        .replace("@INITIAL_INODE@", str(INITIAL_NETNS_INODE))
    )
    texts = (_IF_UP, _IF_DOWN)
    return {
        path: text.replace("@COMMON@", common)
        .replace("@PYCARP@", shlex.quote(program))
        .replace("@HOOKS@", shlex.quote(os.path.abspath(directory)))
        .replace("@READY_WAIT@", str(READY_WAIT))
        .replace("@STOP_TIMEOUT@", str(STOP_TIMEOUT))
        .replace("@DEBIAN_UCARP@", DEBIAN_UCARP)
        .replace("@SOCKET_SUFFIX@", SOCKET_SUFFIX)
        for path, text in zip(HOOK_PATHS, texts, strict=True)
    }


def write_ifupdown(hooks: dict[str, str], directory: str, *, force: bool = False) -> list[str]:
    """Write the hooks under ``directory`` (mode 0755); the paths written.

    Nothing is written if one exists already (without ``force``) or
    ``directory`` is not there.
    """
    if not os.path.isdir(directory):
        raise RenderError(f"--dir: {directory} is not a directory (is ifupdown installed?)")
    return write_scripts(hooks, directory, force=force)


def debian_hook_warning(directory: str) -> str | None:
    """A warning when Debian's ucarp hook would start ucarp beside pycarp, else None."""
    hook = os.path.join(directory, "if-up.d", "ucarp")
    if os.access(hook, os.X_OK) and os.access(DEBIAN_UCARP, os.X_OK):
        return (
            f"warning: {hook} starts ucarp for the same stanzas, and the pycarp hook "
            "refuses them while it can: apt-get remove ucarp (its hook then does nothing)"
        )
    return None
