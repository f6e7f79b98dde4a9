package spec

import (
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"268435456", 268435456, ""},
		{"256Mi", 256 << 20, ""},
		{"1Gi", 1 << 30, ""},
		{"1.5Gi", 3 << 29, ""},
		{"1G", 1e9, ""},
		{"512k", 512e3, ""},
		{"32Mi", 32 << 20, ""},
		{"0.5", 1, ""}, // a fraction of a byte rounds up
		{"8Ei", 0, "too large"},
		{"12x", 0, `"12x" is not a quantity (use e.g. 256Mi, 1Gi)`},
		{"512m", 0, "for mebibytes write 512Mi"},
		{"1g", 0, "for gibibytes write 1Gi"},
		{"64MB", 0, "for mebibytes write 64Mi"},
		{"", 0, "not a quantity"},
		{"-1Mi", 0, "not a quantity"},
		{"1e3", 0, "not a quantity"},
		{"Mi", 0, "not a quantity"},
		{" 1Mi", 0, "not a quantity"},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMemory(%q) = %d, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0.5", 5e8, true},
		{"2", 2e9, true},
		{"250m", 25e7, true},
		{"0.25", 25e7, true},
		{"1.000000001", 1e9 + 1, true},
		{"0.0000000001", 0, false}, // finer than a nanoCPU
		{"1.5m", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"two", 0, false},
		{"1e9", 0, false},
		{"1234567", 0, false}, // absurdly many
	}
	for _, tt := range tests {
		got, err := ParseCPUs(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d (ok %v)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
