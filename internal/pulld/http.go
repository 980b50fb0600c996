package pulld

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushpull/pushpull/internal/nudge"
)

// maxNudgeBody bounds the body of POST /nudge.
const maxNudgeBody = 1 << 10

// Health is the body of GET /healthz.
type Health struct {
	// OK is false when the reconcile loop is stalled (the answer is then 503).
	OK bool `json:"ok"`
	// Sources says, per nudge source, whether it is established.
	Sources map[string]bool `json:"sources"`
}

// handler serves pulld's HTTP endpoints:
//
//	GET  /status   the status document, as written to the bucket (JSON)
//	GET  /healthz  Health: 200 while the loop is alive, 503 when stalled
//	GET  /metrics  Prometheus metrics
//	POST /nudge    reconcile now; the body, if any, must be the nudge address
//	               of this server or of one of its groups (nudge.Address)
func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st := *d.current.Load()
		st.Time = time.Now().UTC()
		w.Header().Set("Content-Type", "application/json")
		w.Write(st.Marshal())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := Health{OK: !d.live.stalled(time.Now()), Sources: d.sourceStates()}
		w.Header().Set("Content-Type", "application/json")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.met.reg, promhttp.HandlerOpts{Registry: d.met.reg}))
	mux.HandleFunc("POST /nudge", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxNudgeBody))
		if err != nil {
			http.Error(w, "nudge: body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if name := bytes.TrimSpace(body); len(name) > 0 && !slices.Contains(d.addresses(), string(name)) {
			http.Error(w, fmt.Sprintf("nudge: this is %s, not %.64q", d.cfg.Server, name), http.StatusMisdirectedRequest)
			return
		}
		if wait := nudge.Delay(nudge.ParseSpread(r.Header.Get(nudge.SpreadHeader))); wait > 0 {
			time.AfterFunc(wait, func() { d.nudge(sourceHTTP) }) // a group's relay: spread the members' reads
		} else {
			d.nudge(sourceHTTP)
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintln(w, "nudged", d.cfg.Server)
	})
	return mux
}
