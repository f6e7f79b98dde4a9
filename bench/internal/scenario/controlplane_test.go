package scenario

import (
	"reflect"
	"testing"
)

func TestParseBench(t *testing.T) {
	out := []byte(`goos: linux
goarch: amd64
pkg: github.com/reconciler/reconciler/pkg/controller
BenchmarkReconcileNoop/specs=1000-2         	      52	  39949532 ns/op	   1137486 p99-ns	     25032 specs/s
BenchmarkReconcileNoop/specs=1000-2         	      50	  41000000 ns/op	   1200000 p99-ns	     24390 specs/s
BenchmarkReconcileNoop/specs=10000-2        	       2	 627095046 ns/op	   1274685 p99-ns	     15947 specs/s
PASS
ok  	github.com/reconciler/reconciler/pkg/controller	10.157s
`)
	got, err := ParseBench(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string][]float64{
		"BenchmarkReconcileNoop/specs=1000": {
			"ns/op": {39949532, 41000000}, "p99-ns": {1137486, 1200000}, "specs/s": {25032, 24390},
		},
		"BenchmarkReconcileNoop/specs=10000": {
			"ns/op": {627095046}, "p99-ns": {1274685}, "specs/s": {15947},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseBench = %v, want %v", got, want)
	}
}
