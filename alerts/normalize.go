package alerts

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Normalize decodes one record of src, exactly as the source sent it, into an Alert with
// its ID, Time, Raw and every field the record carries. An error means the record is
// malformed (not a JSON object, or without what an alert needs, such as its time); it
// names the field and concerns this record only.
//
// Decoding is tolerant (see decode.go): unknown fields are ignored, a field of an
// unexpected shape is treated as absent. Addresses are lower-cased.
func Normalize(src Source, raw json.RawMessage) (Alert, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return Alert{}, fmt.Errorf("normalize %s record: %w", src, err)
	}
	sp, ok := Spec(src)
	switch {
	case !ok:
		return Alert{}, fmt.Errorf("normalize record: unknown source %q", src)
	case sp.normalize == nil:
		return Alert{}, fmt.Errorf("normalize record: %q is an event source, not an alert source", src)
	}
	a, err := sp.normalize(r)
	if err != nil {
		return Alert{}, fmt.Errorf("normalize %s record: %w", src, err)
	}
	a.Source = src
	a.Raw, _ = plain(map[string]any(r)).(map[string]any)
	return a, nil
}

// files reads a list of attachment objects under the names seen or guessed (inferred).
func files(v any) []File {
	list, ok := v.([]any)
	if !ok {
		return nil
	}
	var out []File
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			continue
		}
		r := record(m)
		name := r.str("fileName", "name", "filename")
		f := File{
			Name:     name,
			MimeType: r.str("fileType", "mimeType", "contentType", "mime_type"),
			SHA256:   strings.ToLower(r.str("sha256", "fileHash", "hash")),
			MD5:      strings.ToLower(r.str("md5")),
			SHA1:     strings.ToLower(r.str("sha1")),
		}
		f.Extension = strings.ToLower(strings.TrimPrefix(r.str("fileExtension", "extension"), "."))
		if f.Extension == "" {
			f.Extension = extension(name)
		}
		if n, ok := int64Of(r["size"]); ok {
			f.Size = n
		} else if n, ok := int64Of(r["fileSize"]); ok {
			f.Size = n
		}
		if f.Name == "" && f.SHA256 == "" {
			continue
		}
		out = append(out, f)
		if len(out) >= maxFiles {
			break
		}
	}
	return out
}

// maxFiles bounds the files of one alert.
const maxFiles = 100

// stringList reads a list of scalars (or one scalar) as sorted text, for identifiers.
func stringList(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if s := scalarString(e); s != "" {
				out = append(out, s)
			}
			if len(out) >= maxAddresses {
				break
			}
		}
	default:
		if s := scalarString(x); s != "" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// recipientKey is the recipients' part of an id: the addresses sorted and joined, so a
// record listing several recipients in another order keeps its id.
func recipientKey(rs []string) string {
	s := append([]string(nil), rs...)
	sort.Strings(s)
	return strings.Join(s, ",")
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}
