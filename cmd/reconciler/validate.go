package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/spec"
)

func validateCmd() *cobra.Command {
	var policyFile string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check spec files offline, with the agent's own decoder, validation and policy",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			policy := spec.DefaultPolicy()
			if policyFile != "" {
				p, err := spec.LoadPolicy(policyFile)
				if err != nil {
					return err
				}
				policy = p
			}
			bad := 0
			var all []*spec.Spec         // the good files' specs, checked together below
			owner := map[string]string{} // spec name -> the first file defining it
			for _, f := range args {
				specs, err := readSpecFile(f, policy)
				if err == nil {
					// As the agent: the file that has a name keeps it.
					var taken spec.ErrorList
					for _, s := range specs {
						if o, ok := owner[s.Metadata.Name]; ok {
							taken = append(taken, spec.NameTaken(s, f, o))
						}
					}
					err = taken.Err()
				}
				if err != nil {
					bad++
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					continue
				}
				for _, s := range specs {
					owner[s.Metadata.Name] = f
				}
				all = append(all, specs...)
				for _, s := range specs {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s ok (hash %s)\n", f, s.Metadata.Name, s.Hash())
				}
			}
			// What only the files together show: a dependsOn cycle across
			// them, a Healthy dependency without a healthcheck.
			if errs := spec.CheckDependencies(all); len(errs) > 0 {
				bad++
				fmt.Fprintln(cmd.ErrOrStderr(), errs)
			}
			if bad > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "agent policy file to check against")
	return cmd
}

// readSpecFile decodes, validates and policy-checks one file ("-" is stdin).
func readSpecFile(path string, policy *spec.Policy) ([]*spec.Spec, error) {
	data, err := readSpecInput(path)
	if err != nil {
		return nil, err
	}
	return spec.Load(path, data, policy)
}
