package pulld_test

import (
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/manifest"
)

// TestStatusPollSeconds runs pulld with several poll and heartbeat periods
// and checks that GET /status and status/web-1.json both report, as
// poll_seconds, the period pulld really writes its status at: the poll
// period it runs with (the heartbeat follows it unless given), or a
// longer heartbeat when one is given. manifest.Status.Stale judges the
// host by it.
func TestStatusPollSeconds(t *testing.T) {
	for _, tc := range []struct {
		name            string
		poll, heartbeat time.Duration
		want            time.Duration
	}{
		{"defaults", 0, 0, pulld.DefaultPoll},
		{"poll 30s", 30 * time.Second, 0, 30 * time.Second},
		{"poll 10m", 10 * time.Minute, 0, 10 * time.Minute},
		{"poll 30s, heartbeat 10m", 30 * time.Second, 10 * time.Minute, 10 * time.Minute},
		{"poll 10m, heartbeat 1m", 10 * time.Minute, time.Minute, 10 * time.Minute}, // a write waits for a poll
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "file://"+t.TempDir())
			h.cfg.Poll, h.cfg.Heartbeat = tc.poll, tc.heartbeat
			h.start()
			h.client.Nudge(t)
			want := int64(tc.want / time.Second)
			stored := pulldtest.WaitStatus(t, wait, h.bucketStatus, func(*manifest.Status) bool { return true })
			served := h.client.Status(t)
			for _, st := range []struct {
				where string
				st    *manifest.Status
			}{{"status/web-1.json", stored}, {"GET /status", served}} {
				if st.st.PollSeconds != want {
					t.Errorf("%s: poll_seconds %d, want %d", st.where, st.st.PollSeconds, want)
				}
			}
			now := served.Time
			if served.Stale(now.Add(3*tc.want)) || !served.Stale(now.Add(3*tc.want+time.Second)) {
				t.Errorf("Stale does not turn at three periods of %v after the status", tc.want)
			}
		})
	}
}
