package spec

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// MinMemory is Docker's smallest memory limit.
const MinMemory = 6 << 20

var (
	memoryQuantity = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$`)
	memoryUnits    = map[string]int64{
		"":  1,
		"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60,
	}
)

// ParseMemory reads a byte count written as Kubernetes does: plain bytes
// ("268435456"), binary units ("256Mi", "1.5Gi") or decimal ones ("512k",
// "1G"). Docker's lower-case "512m" is refused rather than read as
// Kubernetes would (0.512 bytes). Fractions of a byte round up.
func ParseMemory(s string) (int64, error) {
	m := memoryQuantity.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a quantity (use e.g. 256Mi, 1Gi)", s)
	}
	unit, ok := memoryUnits[m[2]]
	if !ok {
		if hint := dockerUnitHint(m[2]); hint != "" {
			return 0, fmt.Errorf("%q is not a quantity (for %s write %s%s)", s, hint, m[1], strings.ToUpper(m[2][:1])+"i")
		}
		return 0, fmt.Errorf("%q is not a quantity (use e.g. 256Mi, 1Gi)", s)
	}
	n, _ := new(big.Rat).SetString(m[1])
	n.Mul(n, new(big.Rat).SetInt64(unit))
	bytes := new(big.Int).Quo(n.Num(), n.Denom())
	if !n.IsInt() {
		bytes.Add(bytes, big.NewInt(1))
	}
	if !bytes.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return bytes.Int64(), nil
}

// dockerUnitHint names what a Docker-style unit ("m", "g", "mb") most
// likely meant.
func dockerUnitHint(unit string) string {
	switch strings.TrimSuffix(strings.ToLower(unit), "b") {
	case "k":
		return "kibibytes"
	case "m":
		return "mebibytes"
	case "g":
		return "gibibytes"
	case "t":
		return "tebibytes"
	}
	return ""
}

var (
	cpuDecimal = regexp.MustCompile(`^([0-9]{1,6})(?:\.([0-9]{1,9}))?$`)
	cpuMilli   = regexp.MustCompile(`^([0-9]{1,9})m$`)
)

// ParseCPUs reads a CPU count ("2", "0.5") or millicores ("250m") as
// Docker's NanoCPUs.
func ParseCPUs(s string) (nanoCPUs int64, err error) {
	if m := cpuMilli.FindStringSubmatch(s); m != nil {
		milli, _ := strconv.ParseInt(m[1], 10, 64)
		return milli * 1e6, nil
	}
	m := cpuDecimal.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a CPU count (use e.g. 0.5, 2, 250m)", s)
	}
	whole, _ := strconv.ParseInt(m[1], 10, 64)
	frac := int64(0)
	if m[2] != "" {
		frac, _ = strconv.ParseInt(m[2]+strings.Repeat("0", 9-len(m[2])), 10, 64)
	}
	return whole*1e9 + frac, nil
}
