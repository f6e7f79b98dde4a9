package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/docker/docker/client"
)

// EgressProxyImage is the image of cmd/egress-proxy, the allow-list proxy
// the agent runs beside every container with spec.egress.
const EgressProxyImage = "reconciler/egress-proxy:latest"

const egressProxyPackage = "github.com/reconciler/reconciler/cmd/egress-proxy"

const egressProxyDockerfile = `FROM scratch
COPY rootfs/ /
LABEL %s=true %s=%s
USER 65534:65534
ENTRYPOINT ["/egress-proxy"]
`

// EnsureEgressProxy builds the egress proxy's image unless an image
// tagged tag exists that was built from the current sources (the command
// and the module's packages it imports). It needs the go command and the
// module's source, as `make images` has.
func EnsureEgressProxy(ctx context.Context, cli client.APIClient, tag string, progress io.Writer) error {
	src, err := findSourceWithDeps(ctx, egressProxyPackage, egressProxyDockerfile)
	if err != nil {
		return err
	}
	return ensure(ctx, cli, src, tag, progress, func() error {
		return buildImage(ctx, cli, src, tag, egressProxyDockerfile, "egress-proxy", progress)
	})
}

// findSourceWithDeps is findSource for a program whose code is spread
// over packages of the module: every non-standard package it imports
// counts in the hash too.
func findSourceWithDeps(ctx context.Context, pkg, dockerfile string) (source, error) {
	src, err := findSource(ctx, pkg, dockerfile)
	if err != nil {
		return source{}, err
	}
	out, err := goCommand(ctx, src.dir, nil, "list", "-deps", "-json", ".")
	if err != nil {
		return source{}, err
	}
	h := sha256.New()
	h.Write([]byte(src.hash))
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Dir        string
			Standard   bool
			GoFiles    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return source{}, fmt.Errorf("go list -deps %s: %w", pkg, err)
		}
		if p.Standard || p.ImportPath == pkg {
			continue
		}
		fmt.Fprintf(h, "package %s\n", p.ImportPath)
		for _, name := range p.GoFiles {
			data, err := os.ReadFile(filepath.Join(p.Dir, name))
			if err != nil {
				return source{}, fmt.Errorf("hash sources of %s: %w", p.ImportPath, err)
			}
			fmt.Fprintf(h, "%s %d\n", name, len(data))
			h.Write(data)
		}
	}
	src.hash = hex.EncodeToString(h.Sum(nil))
	return src, nil
}
