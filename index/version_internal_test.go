package index

import (
	"errors"
	"testing"
)

func TestCheckVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"8.19.21": true, "8.7.0": true, "8.7": true, "9.2.0": true, "9.0.0-SNAPSHOT": true, "9.99.1": true,
		"8.6.2": false, "7.17.29": false, "10.0.0": false, "": false, "nine": false, "9.x": false, "1.2.3.4": false,
	} {
		err := checkVersion("http://es", v)
		var ve *VersionError
		if (err == nil) != ok || (err != nil && !errors.As(err, &ve)) {
			t.Errorf("checkVersion(%q) = %v, want supported=%v", v, err, ok)
		}
	}
	if got := SupportedVersions(); got != "8.7 to 9.x" {
		t.Errorf("SupportedVersions() = %q", got)
	}
}
