package agent

import (
	"errors"
	"path/filepath"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/output"
	"github.com/reconciler/reconciler/pkg/store"
)

// outputDir is where the agent keeps each run's complete output: beside
// the state file.
func outputDir(statePath string) string {
	return filepath.Join(filepath.Dir(statePath), "output")
}

// openOutput opens the directory of saved output. A spec's saved output
// stays as long as its exit ledger does (the spec exists, or it is among
// the store's most recently deleted specs), bounded by the flags.
func (a *Agent) openOutput() (*output.Store, error) {
	st := a.Store
	out, err := output.New(output.Options{
		Dir: outputDir(a.Config.StatePath), MaxRunBytes: a.Config.OutputMaxRunBytes,
		MaxSpecBytes: a.Config.OutputMaxSpecBytes, Log: a.log,
		Keep: func(name string) bool {
			if _, err := st.GetSpec(name); !errors.Is(err, store.ErrNotFound) {
				return true // kept, also when the store cannot say
			}
			exits, err := st.Exits(name, 1)
			return err != nil || len(exits) > 0
		},
	})
	if err != nil {
		return nil, err
	}
	if err := out.Prune(); err != nil {
		a.log.Warn("prune saved output", "err", err)
	}
	return out, nil
}

// savedOutput is what the API serves saved runs from; nil when none are
// kept.
func (a *Agent) savedOutput() api.SavedOutput {
	if a.Output == nil {
		return nil
	}
	return a.Output
}
