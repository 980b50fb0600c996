package pulld

import (
	"context"
	"log/slog"
	"sync"
	"time"

	systemd "github.com/coreos/go-systemd/v22/daemon"
)

// stallLimit is how long the loop may spend outside pkginstall (bucket
// calls, status writes, each bounded by bucketTimeout) before the watchdog
// stops vouching for it. Inside pkginstall, the step timeout is the bound.
const stallLimit = 5 * time.Minute

// liveness tracks what the loop is doing, for the systemd watchdog and
// /healthz: a loop waiting for its next poll or running a script is alive;
// one busy elsewhere for longer than stallLimit is stuck.
type liveness struct {
	mu       sync.Mutex
	busy     bool      // the loop is working
	since    time.Time // when busy or applying last changed
	applying bool      // pkginstall is running an action (its own timeouts apply)
}

// set records what the loop does from now on.
func (l *liveness) set(busy, applying bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if busy != l.busy || applying != l.applying {
		l.since = time.Now()
	}
	l.busy, l.applying = busy, applying
}

// stalled reports whether the loop has been busy outside pkginstall for
// longer than stallLimit.
func (l *liveness) stalled(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.busy && !l.applying && now.Sub(l.since) > stallLimit
}

// notifier speaks systemd's sd_notify protocol. Without NOTIFY_SOCKET
// (pulld not started by systemd with Type=notify) every call is a no-op.
type notifier struct {
	log *slog.Logger
}

func (n notifier) send(state string) {
	if _, err := systemd.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// watchdog sends WATCHDOG=1 at half the interval systemd asks for
// (WatchdogSec), as long as the loop is not stalled, until ctx ends.
func (n notifier) watchdog(ctx context.Context, live *liveness) {
	interval, err := systemd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog settings unusable", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if live.stalled(now) {
				n.log.Error("reconcile loop stalled; withholding the systemd watchdog ping", "limit", stallLimit)
				continue
			}
			n.send(systemd.SdNotifyWatchdog)
		}
	}
}
