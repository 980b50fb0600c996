# Sourced by hello's deploy scripts (pulld runs them with its own
# environment, the env's config and Teletraan's variables; see
# docs/teletraan.md).
#
# BUILD is the build this script belongs to. RUN_DIR, beside the builds
# directory (envs/hello/run under pulld's root), outlives every build: it
# holds the pid file, the drain file and the server's log. By hand, without
# BUILDS_DIR, it is BUILD/../run.

BUILD=$(cd "$(dirname "$0")/.." && pwd -P)
if [ -z "${RUN_DIR:-}" ]; then
	if [ -n "${BUILDS_DIR:-}" ]; then
		RUN_DIR=$BUILDS_DIR/../run
	else
		RUN_DIR=$BUILD/../run
	fi
fi
RUN_DIR=$(mkdir -p "$RUN_DIR" && cd "$RUN_DIR" && pwd -P)
PIDFILE=$RUN_DIR/hello.pid
DRAINFILE=$RUN_DIR/drain
LOGFILE=$RUN_DIR/hello.log
CONF=$BUILD/teletraan/hello.conf
# The port: the entry's PORT, else the host's (pulld's environment), else
# 8081. hello reads it from the environment when the config leaves it empty.
PORT=${PORT:-8081}
export PORT

say() {
	echo "hello ${DEPLOY_STEP:-$(basename "$0")}: $*"
}

# gone succeeds when process $1 has exited. A zombie counts as exited: the
# server is not our child, and whatever adopted it may reap it late.
gone() {
	kill -0 "$1" 2>/dev/null || return 0
	if [ -r "/proc/$1/stat" ]; then
		case $(cut -d')' -f2 "/proc/$1/stat") in " Z"*) return 0 ;; esac
	fi
	return 1
}

# running_pid prints the pid of the running hello, if the pid file names a
# live hello process.
running_pid() {
	[ -f "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE")
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	if gone "$pid"; then return 1; fi
	# A pid file left by a reboot may name another process now.
	if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" != hello ]; then
		return 1
	fi
	echo "$pid"
}

# stop_hello stops the running hello (SIGTERM, then SIGKILL after 10 s)
# and removes the pid file.
stop_hello() {
	if ! pid=$(running_pid); then
		say "hello is not running"
		rm -f "$PIDFILE"
		return 0
	fi
	say "stopping hello (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while ! gone "$pid"; do
		i=$((i + 1))
		if [ "$i" -ge 100 ]; then
			say "pid $pid still runs after 10 s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
	rm -f "$PIDFILE"
}
