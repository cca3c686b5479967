package update

import (
	"strconv"
	"strings"
)

// version is a parsed semantic version (semver.org 2.0.0, without build
// metadata).
type version struct {
	major, minor, patch uint64
	pre                 []string // pre-release identifiers; none for a release
}

// parseVersion accepts MAJOR.MINOR.PATCH[-PRERELEASE] with an optional
// leading "v". Build metadata ("+...") is refused: semver ignores it when
// ordering, so two bundles differing only there could not be told apart.
func parseVersion(s string) (version, bool) {
	var v version
	s = strings.TrimPrefix(s, "v")
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, false
	}
	nums := [3]*uint64{&v.major, &v.minor, &v.patch}
	for i, p := range parts {
		if !numeric(p) {
			return v, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, false
		}
		*nums[i] = n
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" || strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != "" {
				return v, false
			}
			if isDigits(id) && !numeric(id) {
				return v, false // leading zero
			}
		}
	}
	return v, true
}

// numeric reports whether s is a semver numeric identifier: digits, no
// leading zero.
func numeric(s string) bool {
	return isDigits(s) && (s == "0" || s[0] != '0')
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// compare orders versions by semver precedence: -1, 0 or +1.
func (a version) compare(b version) int {
	for _, d := range [3][2]uint64{{a.major, b.major}, {a.minor, b.minor}, {a.patch, b.patch}} {
		if d[0] != d[1] {
			return cmpUint(d[0], d[1])
		}
	}
	// A pre-release comes before the release.
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		if x == y {
			continue
		}
		xn, yn := isDigits(x), isDigits(y)
		switch {
		case xn && yn:
			// Compare as numbers without overflow: a longer one is larger.
			if len(x) != len(y) {
				return cmpUint(uint64(len(x)), uint64(len(y)))
			}
			return strings.Compare(x, y)
		case xn:
			return -1
		case yn:
			return 1
		}
		return strings.Compare(x, y)
	}
	return cmpUint(uint64(len(a.pre)), uint64(len(b.pre)))
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CompareVersions orders two version strings by semver precedence; ok is
// false if either is not a version this package accepts.
func CompareVersions(a, b string) (c int, ok bool) {
	va, oka := parseVersion(a)
	vb, okb := parseVersion(b)
	if !oka || !okb {
		return 0, false
	}
	return va.compare(vb), true
}
