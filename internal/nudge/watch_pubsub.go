package nudge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/pushpull/pushpull/internal/backoff"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/mempubsub" // mem:// subscriptions (tests, single process)
	"gocloud.dev/pubsub/natspubsub"
)

// shutdownTimeout bounds how long closing a subscription may take.
const shutdownTimeout = 5 * time.Second

// WatchPubSub nudges for every message on the gocloud.dev/pubsub
// subscription at subURL whose body is one of accept: the Address of the
// host's server and of each of its groups. A message that carries a spread
// (SpreadKey, a group nudge) nudges after a random wait within it, so that
// a large group's members do not all read the bucket in the same second. Other messages are acknowledged
// and ignored, so one topic can serve a whole fleet; but then every host receives every
// server's message, N² deliveries for a push to a fleet of N, and a large
// fleet should give each server a subscription of its own instead
// (nats://pushpull.web-1, published to by internal/nudge with the topic
// template nats://pushpull.{server}), where the check of the body is only a
// safety net. subURL is a concrete URL: pulld expands a -nudge template
// before calling PubSub.
//
// The drivers linked in are mem:// (one process) and nats:// (gocloud's
// natspubsub: the subject is the URL's host and path, which must be a valid
// NATS subject (dot-separated non-empty tokens), natsv2=true selects
// NATS 2 message encoding, which the sender must match, and queue=Q is
// refused because every host must see every message). For nats:// the
// server is NATS_SERVER_URL, as for gocloud's default opener, but PubSub
// makes its own connection per subscription, reconnecting forever, and
// closes it when done, instead of sharing one process-wide connection. Every
// message is acknowledged as soon as it is read: a nudge is a hint, and the
// poll catches up with anything lost.
//
// A subscription that cannot be opened or that fails is logged and reopened
// with backoff. PubSub returns ctx.Err() when ctx ends, and an error at once
// when accept is empty or CheckPubSubURL refuses subURL.
func WatchPubSub(ctx context.Context, subURL string, accept []string, h Hooks) error {
	if len(accept) == 0 || slices.Contains(accept, "") {
		return errors.New("nudge: watch pubsub: no address to accept")
	}
	if err := CheckPubSubURL(subURL); err != nil {
		return err
	}
	u, _ := url.Parse(subURL)
	log := h.logger().With("source", "pubsub", "scheme", u.Scheme)
	want := make([][]byte, len(accept))
	for i, a := range accept {
		want[i] = []byte(a)
	}
	for fails := 0; ; {
		err := receive(ctx, subURL, want, h, func() { fails = 0 })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("pubsub subscription failed", "err", err, "retry", fails+1)
		if backoff.Sleep(ctx, retryDelay(fails)) != nil {
			return ctx.Err()
		}
		fails++
	}
}

// receive opens the subscription and reads from it until it fails or ctx
// ends. It calls opened once the subscription is open.
func receive(ctx context.Context, subURL string, want [][]byte, h Hooks, opened func()) (err error) {
	sub, closeConn, err := openSubscription(ctx, subURL)
	if err != nil {
		return fmt.Errorf("open subscription: %w", err)
	}
	defer closeConn()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if serr := sub.Shutdown(sctx); err == nil && ctx.Err() == nil {
			err = serr
		}
	}()
	opened()
	h.ready()
	for {
		msg, err := sub.Receive(ctx)
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		msg.Ack()
		body := bytes.TrimSpace(msg.Body)
		if slices.ContainsFunc(want, func(w []byte) bool { return bytes.Equal(body, w) }) {
			h.spread(ParseSpread(msg.Metadata[SpreadKey]))
		}
	}
}

// openSubscription opens subURL, with a connection of its own for nats://
// URLs. The returned function releases that connection; call it after
// shutting the subscription down.
func openSubscription(ctx context.Context, subURL string) (*pubsub.Subscription, func(), error) {
	u, err := url.Parse(subURL)
	if err != nil {
		return nil, nil, err
	}
	if u.Scheme != natspubsub.Scheme {
		sub, err := pubsub.OpenSubscription(ctx, subURL)
		return sub, func() {}, err
	}
	v2, err := natsV2(u)
	if err != nil {
		return nil, nil, err
	}
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		return nil, nil, errors.New("NATS_SERVER_URL is not set")
	}
	nc, err := nats.Connect(server, nats.Name("pulld"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS_SERVER_URL %s: %w", server, err)
	}
	o := &natspubsub.URLOpener{Connection: nc, UseV2: v2}
	sub, err := o.OpenSubscriptionURL(ctx, u)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return sub, nc.Close, nil
}

// CheckPubSubURL reports whether subURL is a subscription URL PubSub can
// open: it parses, its scheme has a driver linked in, and for nats:// its
// subject is valid and its only parameter is natsv2. It does not connect.
func CheckPubSubURL(subURL string) error {
	u, err := url.Parse(subURL)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("nudge: watch pubsub: subscription URL %q is not scheme://…", subURL)
	}
	if u.Scheme == natspubsub.Scheme {
		if err := checkSubject(path.Join(u.Host, u.Path)); err != nil {
			return fmt.Errorf("nudge: watch pubsub: nats URL %q: %w", u.Redacted(), err)
		}
		_, err := natsV2(u)
		return err
	}
	if !pubsub.DefaultURLMux().ValidSubscriptionScheme(u.Scheme) {
		return fmt.Errorf("nudge: watch pubsub: subscription URL %q: no driver for scheme %q (have mem, nats, gcppubsub, awssqs)", subURL, u.Scheme)
	}
	return nil
}

// checkSubject reports whether subject, computed from a nats:// URL as
// natspubsub does, is one NATS accepts a subscription to: dot-separated
// tokens, none empty, without whitespace. A per-server subject such as
// pushpull.{server} fails this for a server name with two dots in a row or
// a trailing dot, which would otherwise make the subscription fail at every
// attempt.
func checkSubject(subject string) error {
	if subject == "" {
		return errors.New("empty subject")
	}
	if strings.ContainsAny(subject, " \t\r\n") {
		return fmt.Errorf("subject %q contains whitespace", subject)
	}
	if slices.Contains(strings.Split(subject, "."), "") {
		return fmt.Errorf("subject %q has an empty token", subject)
	}
	return nil
}

// natsV2 reads the natsv2 parameter of a nats:// URL and refuses any other.
func natsV2(u *url.URL) (bool, error) {
	v2 := false
	for k, vs := range u.Query() {
		if !strings.EqualFold(k, "natsv2") {
			return false, fmt.Errorf("nudge: watch pubsub: nats URL %q: unsupported parameter %q (only natsv2)", u.Redacted(), k)
		}
		v2 = len(vs) == 0 || vs[0] == "" || strings.EqualFold(vs[0], "true")
	}
	return v2, nil
}
