package ops

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/rollout"
)

// newDriver returns the rollout driver of s: its members come from the
// View, refreshed once per tick that moves a rollout (reading only what
// changed), and not at all while none runs.
func (s *Service) newDriver(store *blobstore.Store, tick time.Duration) *rollout.Driver {
	host, _ := os.Hostname()
	return &rollout.Driver{
		Store:   store,
		Fleet:   s.Fleet,
		Holder:  "pushui@" + host + "/" + strconv.Itoa(os.Getpid()),
		Lease:   6 * tick,
		Now:     s.Now,
		Log:     s.Log,
		Refresh: func(ctx context.Context) error { return s.View.Refresh(ctx) },
		Members: func(ctx context.Context, group string) ([]rollout.Member, error) {
			st, now := s.View.Load(), s.Now()
			var out []rollout.Member
			for _, name := range st.Members(group) {
				ss := st.Servers[name]
				out = append(out, rollout.Member{Name: name, Status: ss.Status, Stale: ss.Status.Stale(now)})
			}
			return out, nil
		},
	}
}
