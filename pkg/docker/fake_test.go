package docker

import (
	"context"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// fakeAPI answers the few daemon calls a test sets; any other call hits the
// nil embedded interface and panics, which shows the test is incomplete.
type fakeAPI struct {
	client.APIClient
	wait    func(ctx context.Context, id string) (<-chan container.WaitResponse, <-chan error)
	inspect func(ctx context.Context, id string) (container.InspectResponse, error)
	events  func(ctx context.Context) (<-chan events.Message, <-chan error)
	list    func(ctx context.Context) ([]container.Summary, error)
	pull    func(ctx context.Context) (io.ReadCloser, error)
}

func (f *fakeAPI) ContainerList(ctx context.Context, _ container.ListOptions) ([]container.Summary, error) {
	return f.list(ctx)
}

func (f *fakeAPI) ImagePull(ctx context.Context, _ string, _ image.PullOptions) (io.ReadCloser, error) {
	return f.pull(ctx)
}

func (f *fakeAPI) ContainerWait(ctx context.Context, id string, _ container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	return f.wait(ctx, id)
}

func (f *fakeAPI) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	return f.inspect(ctx, id)
}

func (f *fakeAPI) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	return f.events(ctx)
}

func waitFails(err error) func(context.Context, string) (<-chan container.WaitResponse, <-chan error) {
	return func(context.Context, string) (<-chan container.WaitResponse, <-chan error) {
		errc := make(chan error, 1)
		errc <- err
		return make(chan container.WaitResponse), errc
	}
}

func waitReturns(code int64) func(context.Context, string) (<-chan container.WaitResponse, <-chan error) {
	return func(context.Context, string) (<-chan container.WaitResponse, <-chan error) {
		resc := make(chan container.WaitResponse, 1)
		resc <- container.WaitResponse{StatusCode: code}
		return resc, make(chan error)
	}
}

func inspectState(st container.State, labels map[string]string) func(context.Context, string) (container.InspectResponse, error) {
	return func(_ context.Context, id string) (container.InspectResponse, error) {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/web", State: &st},
			Config:            &container.Config{Labels: labels},
		}, nil
	}
}

// eventsLog replays msgs as the daemon does for a search in the past: each
// message on an unbuffered channel, then io.EOF.
func eventsLog(msgs ...events.Message) func(context.Context) (<-chan events.Message, <-chan error) {
	return func(ctx context.Context) (<-chan events.Message, <-chan error) {
		out, errs := make(chan events.Message), make(chan error, 1)
		go func() {
			for _, m := range msgs {
				select {
				case out <- m:
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
			errs <- io.EOF
		}()
		return out, errs
	}
}
