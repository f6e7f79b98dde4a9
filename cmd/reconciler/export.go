package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/export"
	"github.com/reconciler/reconciler/pkg/spec"
)

func exportCmd() *cobra.Command {
	var files []string
	var format, registryConfig string
	cmd := &cobra.Command{
		Use:   "export --format kubernetes [-f FILE|DIR]... [NAME...]",
		Short: "Write Kubernetes manifests for specs, from files or from the agent",
		Long: `Write a Kubernetes manifest for each spec: a Deployment for restartPolicy
Always, a Job for OnFailure and Never. The specs come from -f files (read
offline with the agent's decoder) or, without -f, from the agent; NAMEs pick
some of them. Manifests go to stdout; what Kubernetes cannot express as the
agent does goes to stderr, one "warning: SPEC: FIELD: what" a line.`,
		Example: `  reconciler export --format kubernetes -f specs/ > manifests.yaml
  reconciler export --format kubernetes claude-fix-tests | kubectl apply -f -`,
	}
	c := addConnFlags(cmd)
	cmd.Flags().StringVar(&format, "format", "kubernetes", "manifest format (kubernetes)")
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "spec file, directory of *.yaml/*.yml files, or - for stdin (repeatable)")
	cmd.Flags().StringVar(&registryConfig, "registry-config", "", "the agent's Docker config.json: images on its registries get imagePullSecrets (no credential is written)")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, names []string) error {
		if format != "kubernetes" {
			return fmt.Errorf("--format %q: kubernetes is the only format", format)
		}
		var specs []*spec.Spec
		var err error
		if len(files) > 0 {
			specs, err = specsFromFiles(files, names)
		} else {
			specs, err = specsFromAgent(ctx, cl, names)
		}
		if err != nil {
			return err
		}
		opts, err := export.OptionsFrom(registryConfig)
		if err != nil {
			return err
		}
		return writeKubernetes(cmd.OutOrStdout(), cmd.ErrOrStderr(), specs, opts)
	})
	return cmd
}

func writeKubernetes(out, errw io.Writer, specs []*spec.Spec, opts export.Options) error {
	if len(specs) == 0 {
		return fmt.Errorf("no specs to export")
	}
	manifests, warnings, err := export.KubernetesWith(specs, opts)
	if err != nil {
		return err
	}
	if _, err := out.Write(manifests); err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(errw, "warning: %s\n", w)
	}
	return nil
}

// specsFromFiles decodes files as `validate` does, without the policy: the
// target cluster has its own. names, when given, pick specs by name.
func specsFromFiles(files, names []string) ([]*spec.Spec, error) {
	paths, err := expandFiles(files)
	if err != nil {
		return nil, err
	}
	var all []*spec.Spec
	for _, p := range paths {
		data, err := readSpecInput(p)
		if err != nil {
			return nil, err
		}
		specs, err := spec.Decode(p, data)
		if err != nil {
			return nil, err
		}
		all = append(all, specs...)
	}
	if errs := spec.ValidateSet(all); len(errs) > 0 {
		return nil, errs
	}
	if len(names) == 0 {
		return all, nil
	}
	var picked []*spec.Spec
	for _, n := range names {
		i := slices.IndexFunc(all, func(s *spec.Spec) bool { return s.Metadata.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("no spec named %q in %v", n, files)
		}
		picked = append(picked, all[i])
	}
	return picked, nil
}

// specsFromAgent exports what the agent runs: the named specs, or all.
func specsFromAgent(ctx context.Context, cl *api.Client, names []string) ([]*spec.Spec, error) {
	var views []api.SpecView
	if len(names) == 0 {
		all, err := cl.List(ctx)
		if err != nil {
			return nil, err
		}
		views = all
	}
	for _, n := range names {
		v, err := cl.Get(ctx, n)
		if err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	specs := make([]*spec.Spec, 0, len(views))
	for _, v := range views {
		if v.Spec != nil {
			specs = append(specs, v.Spec)
		}
	}
	return specs, nil
}
