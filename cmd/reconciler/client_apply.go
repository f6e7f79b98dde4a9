package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/spec"
)

func applyCmd() *cobra.Command {
	var files []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|- [-f ...]",
		Short: "Create or update specs through the agent's API (validated as spec files are)",
		Example: `  reconciler apply -f web.yaml
  reconciler apply -f specs/ --dry-run
  cat web.yaml | reconciler apply -f -`,
		Args: cobra.NoArgs,
	}
	c := addConnFlags(cmd)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "spec file, directory of *.yaml/*.yml files, or - for stdin (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and report what would change, change nothing")
	_ = cmd.MarkFlagRequired("filename")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, _ []string) error {
		paths, err := expandFiles(files)
		if err != nil {
			return err
		}
		failed := 0
		for _, p := range paths {
			err := applyFile(ctx, cl, cmd.OutOrStdout(), p, dryRun)
			var ae *api.APIError
			switch {
			case errors.As(err, &ae):
				failed++
				fmt.Fprintln(cmd.ErrOrStderr(), locate(ae, p))
			case err != nil:
				return err
			}
		}
		if failed > 0 {
			return exitError{code: 1}
		}
		return nil
	})
	return cmd
}

// expandFiles turns each -f into files: a directory gives its *.yaml and
// *.yml files (not recursing), as the agent reads its specs directory.
func expandFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if a == "-" {
			out = append(out, a)
			continue
		}
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, a)
			continue
		}
		ents, err := os.ReadDir(a)
		if err != nil {
			return nil, err
		}
		var found []string
		for _, e := range ents {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") && !strings.HasPrefix(e.Name(), ".") {
				found = append(found, filepath.Join(a, e.Name()))
			}
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml or *.yml files", a)
		}
		slices.Sort(found)
		out = append(out, found...)
	}
	return out, nil
}

func applyFile(ctx context.Context, cl *api.Client, w io.Writer, path string, dryRun bool) error {
	data, err := readSpecInput(path)
	if err != nil {
		return err
	}
	if len(data) > api.DefaultMaxBody {
		return fmt.Errorf("%s is %d bytes, over the %d the API accepts in one request: split it, or put it in the agent's specs directory", path, len(data), api.DefaultMaxBody)
	}
	ctype := "application/yaml"
	if filepath.Ext(path) == ".json" {
		ctype = "application/json"
	}
	res, err := cl.Apply(ctx, data, ctype, dryRun)
	if err != nil {
		return err
	}
	suffix := ""
	if res.DryRun {
		suffix = " (dry run)"
	}
	for _, s := range res.Specs {
		fmt.Fprintf(w, "%s %s%s\n", s.Name, s.Action, suffix)
	}
	return nil
}

// readSpecInput reads a file or stdin ("-"), refusing what is over the
// limit the agent would refuse anyway, and what is no regular file (a FIFO
// would block the command).
func readSpecInput(path string) ([]byte, error) {
	if path == "-" {
		return spec.ReadLimited("<stdin>", os.Stdin)
	}
	return spec.ReadFile(path)
}

// locate names the file the agent's error is about: the agent only saw a
// body.
func locate(ae *api.APIError, path string) error {
	if path == "-" {
		path = "<stdin>"
	}
	if ae.Status == http.StatusConflict { // ae.File is the file that owns the spec
		return fmt.Errorf("%s: %s", path, ae.Message)
	}
	if ae.File == "" && (ae.Line > 0 || ae.Field != "") {
		ae.File = path
	}
	for i := range ae.Errors {
		if ae.Errors[i].File == "" {
			ae.Errors[i].File = path
		}
	}
	if ae.File == "" && len(ae.Errors) == 0 {
		return fmt.Errorf("%s: %w", path, ae)
	}
	return ae
}
