package index

import (
	"fmt"
	"strconv"
	"strings"
)

// The Elasticsearch versions mimecrawl works with, said once: Open refuses the others, `check`
// names the range, README and docs/elasticsearch.md repeat it.
//
// The floor is the oldest 8.x that has every API setup.go uses: index templates with
// ignore_missing_component_templates came in 8.7. The ceiling is the newest major the test
// suites run against (make test-es9, scripts/elasticsearch.sh); a later major may drop what we
// rely on, so it is refused until a release has been tested on it.
var (
	minSupported      = clusterVersion{8, 7, 0}
	newestMajorTested = 9
)

// SupportedVersions describes the supported range for messages, e.g. "8.7 to 9.x".
func SupportedVersions() string {
	return fmt.Sprintf("%d.%d to %d.x", minSupported.major, minSupported.minor, newestMajorTested)
}

// clusterVersion is a release number of Elasticsearch; a pre-release suffix is ignored.
type clusterVersion struct{ major, minor, patch int }

// parseVersion reads "9.2.0", "8.19.21" or "9.0.0-SNAPSHOT"; missing parts are zero.
func parseVersion(s string) (clusterVersion, bool) {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "-")
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 3 || parts[0] == "" {
		return clusterVersion{}, false
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return clusterVersion{}, false
		}
		n[i] = v
	}
	return clusterVersion{n[0], n[1], n[2]}, true
}

func (v clusterVersion) less(o clusterVersion) bool {
	if v.major != o.major {
		return v.major < o.major
	}
	if v.minor != o.minor {
		return v.minor < o.minor
	}
	return v.patch < o.patch
}

// VersionError says that a cluster runs a version outside SupportedVersions.
type VersionError struct {
	Where   string // the addresses, without user information
	Version string // as the cluster gave it
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("elasticsearch at %s runs version %q; mimecrawl supports %s", e.Where, e.Version, SupportedVersions())
}

// checkVersion returns a *VersionError unless version is in the supported range.
func checkVersion(where, version string) error {
	v, ok := parseVersion(version)
	if !ok || v.less(minSupported) || v.major > newestMajorTested {
		return &VersionError{Where: where, Version: version}
	}
	return nil
}

// Major returns the major version of the cluster Open talked to (8, 9).
func (c *Cluster) Major() int {
	v, _ := parseVersion(c.version)
	return v.major
}
