package pushui_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pushui"
	"github.com/pushpull/pushpull/manifest"
)

// A Server over a bucket: the JSON API answers what the bucket holds.
func ExampleNew() {
	ctx := context.Background()
	store, err := blobstore.Open(ctx, "mem://")
	if err != nil {
		panic(err)
	}
	defer store.Close()
	conf, err := manifest.ParsePushConfig([]byte(`{"servers": {"web-1": ["hello"]}, "groups": {"web": ["hello"]}}`))
	if err != nil {
		panic(err)
	}
	srv, err := pushui.New(ctx, pushui.Options{Store: store, Config: conf, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}

	// A PUT without If-Match is refused: every write is conditional.
	req := httptest.NewRequest(http.MethodPut, "/api/servers/web-1", strings.NewReader(`{"packages": []}`))
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	fmt.Println(w.Code)

	// Creating the manifest says so with If-None-Match.
	req = httptest.NewRequest(http.MethodPut, "/api/servers/web-1", strings.NewReader(`{"packages": []}`))
	req.Header.Set("If-None-Match", "*")
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("ETag") != "")
	// Output:
	// 428
	// 200 true
}
