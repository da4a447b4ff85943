package alerts

import (
	"encoding/json"
	"fmt"
)

// Normalize decodes one record of src, exactly as the source sent it, into an Alert with
// its ID, Time, Raw and every field the record carries. An error means the record is
// malformed (not a JSON object, or without what an alert needs, such as its time); it
// names the field and concerns this record only.
func Normalize(src Source, raw json.RawMessage) (Alert, error) {
	return Alert{}, fmt.Errorf("normalize %s record: not implemented", src)
}
