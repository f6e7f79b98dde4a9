package agent

import (
	"context"
	"path/filepath"
	"time"

	"github.com/reconciler/reconciler/pkg/imagegc"
	"github.com/reconciler/reconciler/pkg/model"
)

// ImageGCConfig are the image garbage collector's settings; its
// thresholds both zero (the default) leave it off.
type ImageGCConfig struct {
	imagegc.Thresholds
	// Period between checks (besides one after every container removal);
	// zero is imagegc.DefaultPeriod.
	Period time.Duration
}

// runImageGC runs the collector once the daemon answered, when it is on.
func (a *Agent) runImageGC(ctx context.Context, cli imagegc.Daemon) error {
	cfg := a.Config.ImageGC
	if !cfg.Enabled() {
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-a.ready:
	}
	gc := imagegc.New(cli, imagegc.Options{
		Thresholds: cfg.Thresholds,
		Period:     cfg.Period,
		Instance:   a.Store.InstanceID(),
		StateFile:  imageGCFile(a.Config.StatePath, a.Store.InstanceID()),
		Referenced: a.specImages,
		Keep:       a.keptImages,
		Event: func(typ model.EventType, reason, format string, args ...any) {
			a.Recorder.Event("", typ, reason, format, args...)
		},
		Metrics: imagegc.NewMetrics(a.Metrics.Registry),
		Log:     a.log.With("component", "imagegc"),
	})
	return gc.Run(ctx)
}

// specImages are the images the stored specs name.
func (a *Agent) specImages() ([]string, error) {
	recs, err := a.Store.ListSpecs()
	if err != nil {
		return nil, err
	}
	refs := make([]string, 0, len(recs))
	for _, r := range recs {
		refs = append(refs, r.Spec.Spec.Image)
	}
	return refs, nil
}

// keptImages are image IDs that must stay though no spec names them. The
// previous image of an update is kept by its reconciler-rollback/ tag,
// which imagegc.PinnedImages covers, so nothing is added here yet.
func (a *Agent) keptImages() []string { return nil }

// imageGCFile keeps when this agent's containers last used each image:
// beside the state file, one per agent instance.
func imageGCFile(statePath, instance string) string {
	return filepath.Join(filepath.Dir(statePath), "image-gc-"+instance+".json")
}
