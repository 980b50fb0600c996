package pkgformat_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/pushpull/pushpull/pkgformat"
)

func ExampleRenderTemplate() {
	config := map[string]string{"LOG_LEVEL": "debug"}
	lookup := func(name string) (string, bool) { v, ok := config[name]; return v, ok }

	out, err := pkgformat.RenderTemplate([]byte("level={$TELETRAAN_LOG_LEVEL:info} port=${TELETRAAN_PORT:8080} cost=$5\n"), lookup)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(out))

	_, err = pkgformat.RenderTemplate([]byte("# config\ndb=${TELETRAAN_DB_URL}\n"), lookup)
	fmt.Println(err)
	// Output:
	// level=debug port=8080 cost=$5
	// render: line 2: template error: ${TELETRAAN_DB_URL}: config value DB_URL is not set and there is no default
}

func ExampleRenderTemplates() {
	build, err := os.MkdirTemp("", "build")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(build)
	os.Mkdir(filepath.Join(build, "teletraan"), 0o755)
	tmpl := filepath.Join(build, "teletraan", "RESTARTING.tmpl")
	os.WriteFile(tmpl, []byte("#!/bin/sh\nexec ./bin/app -log {$TELETRAAN_LOG_LEVEL:info}\n"), 0o755)

	if err := pkgformat.RenderTemplates(build, map[string]string{"LOG_LEVEL": "warn"}); err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(build, "teletraan", "RESTARTING"))
	fmt.Print(string(b))
	// Output:
	// #!/bin/sh
	// exec ./bin/app -log warn
}
