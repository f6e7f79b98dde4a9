package docker

import "strconv"

// linuxSignals names signals 1-31 by their Linux number; exit codes from
// containers always carry Linux numbering, whatever the agent runs on.
var linuxSignals = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
	18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU",
	23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF",
	28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// Real-time signals as glibc numbers them (SIGRTMIN is 34).
const (
	sigRTMin = 34
	sigRTMax = 64
)

// SignalName names the signal behind a shell-style exit code (128 + signal
// number): 137 is SIGKILL, 143 SIGTERM. Codes up to 128, and codes that
// are no signal (255 is a plain exit(-1)), give "".
func SignalName(code int) string {
	n := code - 128
	switch {
	case n > 0 && n < len(linuxSignals):
		return linuxSignals[n]
	case n == sigRTMin:
		return "SIGRTMIN"
	case n > sigRTMin && n <= sigRTMax:
		return "SIGRTMIN+" + strconv.Itoa(n-sigRTMin)
	}
	return ""
}
