package docker

import "testing"

func TestSignalName(t *testing.T) {
	for code, want := range map[int]string{
		0: "", 1: "", 3: "", 128: "", 129: "SIGHUP", 130: "SIGINT", 134: "SIGABRT", 137: "SIGKILL",
		139: "SIGSEGV", 143: "SIGTERM", 159: "SIGSYS", 160: "", 162: "SIGRTMIN", 164: "SIGRTMIN+2",
		192: "SIGRTMIN+30", 193: "", 255: "",
	} {
		if got := SignalName(code); got != want {
			t.Errorf("SignalName(%d) = %q, want %q", code, got, want)
		}
	}
}
