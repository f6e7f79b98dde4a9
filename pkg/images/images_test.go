package images

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestReadBuildOutputCopiesStream(t *testing.T) {
	stream := `{"stream":"Step 1/2 : FROM scratch\n"}
{"stream":" ---\u003e \n"}
{"aux":{"ID":"sha256:abc"}}
{"stream":"Successfully built abc\n"}
`
	var progress bytes.Buffer
	if err := readBuildOutput(strings.NewReader(stream), &progress); err != nil {
		t.Fatalf("readBuildOutput: %v", err)
	}
	want := "Step 1/2 : FROM scratch\n ---> \nSuccessfully built abc\n"
	if progress.String() != want {
		t.Errorf("progress = %q, want %q", progress.String(), want)
	}
}

func TestReadBuildOutputReturnsDaemonError(t *testing.T) {
	stream := `{"stream":"Step 1/2 : COPY nope /nope\n"}
{"errorDetail":{"message":"COPY failed: file not found in build context"},"error":"COPY failed: file not found in build context"}
`
	err := readBuildOutput(strings.NewReader(stream), io.Discard)
	if err == nil || err.Error() != "COPY failed: file not found in build context" {
		t.Fatalf("error = %v, want the daemon's message", err)
	}
}

func TestReadBuildOutputRejectsGarbage(t *testing.T) {
	err := readBuildOutput(strings.NewReader("<html>bad gateway</html>"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "read build output") {
		t.Fatalf("error = %v, want a decode error", err)
	}
}

func TestBuildContext(t *testing.T) {
	data, err := buildContext(
		file{name: "Dockerfile", data: []byte("FROM scratch\n"), mode: 0o644},
		file{name: "box", data: []byte("\x7fELF"), mode: 0o755},
	)
	if err != nil {
		t.Fatalf("buildContext: %v", err)
	}
	again, _ := buildContext(
		file{name: "Dockerfile", data: []byte("FROM scratch\n"), mode: 0o644},
		file{name: "box", data: []byte("\x7fELF"), mode: 0o755},
	)
	if !bytes.Equal(data, again) {
		t.Error("the same files gave two different tar streams; the builder cache would miss")
	}
	type entry struct {
		name string
		mode int64
		body string
	}
	var got []entry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, _ := io.ReadAll(tr)
		got = append(got, entry{hdr.Name, hdr.Mode, string(body)})
	}
	want := []entry{{"Dockerfile", 0o644, "FROM scratch\n"}, {"box", 0o755, "\x7fELF"}}
	if !slices.Equal(got, want) {
		t.Errorf("entries = %+v, want %+v", got, want)
	}
}

func TestFindSourceHashesBoxSources(t *testing.T) {
	src, err := findSource(t.Context(), boxPackage, boxDockerfile)
	if err != nil {
		t.Fatalf("findSource: %v", err)
	}
	if !strings.HasSuffix(src.dir, "cmd/box") || len(src.hash) != 64 {
		t.Errorf("source = %+v, want cmd/box and a sha256 hex", src)
	}
	again, err := findSource(t.Context(), boxPackage, boxDockerfile)
	if err != nil || again.hash != src.hash {
		t.Errorf("hash changed between two calls: %s, %s (%v)", src.hash, again.hash, err)
	}
}
