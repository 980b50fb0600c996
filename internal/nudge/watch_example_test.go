package nudge_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gocloud.dev/pubsub"

	"github.com/pushpull/pushpull/internal/nudge"
)

// WatchFile nudges when the manifest file of a file:// bucket changes.
func ExampleWatchFile() {
	dir, _ := os.MkdirTemp("", "bucket")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "servers", "web-1.json")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, nudged := make(chan struct{}, 1), make(chan struct{}, 10)
	go nudge.WatchFile(ctx, path, nudge.Hooks{
		Nudge: func() { nudged <- struct{}{} },
		Ready: func() { ready <- struct{}{} },
	})
	<-ready
	os.WriteFile(path, []byte(`{"revision": 1, "packages": []}`), 0o644)
	<-nudged
	fmt.Println("nudged")
	// Output: nudged
}

// WatchPubSub nudges for messages whose body is the server's name.
func ExampleWatchPubSub() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	topic, _ := pubsub.OpenTopic(ctx, "mem://example-nudges")
	defer topic.Shutdown(context.Background())

	ready, nudged := make(chan struct{}, 1), make(chan struct{}, 10)
	go nudge.WatchPubSub(ctx, "mem://example-nudges", []string{"web-1"}, nudge.Hooks{
		Nudge: func() { nudged <- struct{}{} },
		Ready: func() { ready <- struct{}{} },
	})
	<-ready
	topic.Send(ctx, &pubsub.Message{Body: []byte("web-2")}) // another host's: ignored
	topic.Send(ctx, &pubsub.Message{Body: []byte("web-1")})
	<-nudged
	fmt.Println("nudged web-1")
	// Output: nudged web-1
}
