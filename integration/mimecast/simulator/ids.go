package simulator

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/adler32"
	"io"
	"strconv"
	"strings"
)

// Opaque identifiers. Real archive ids are URL-safe base64 (no padding) of zlib-compressed
// JSON and start with "eN" (zlib header 0x78 0xDA). The simulator builds ids the same way
// but writes the deflate stream as a single stored block, so ids do not depend on the
// compressor of a Go release and cost no compressor state. The JSON carries a keyed
// "secureid" so a forged or foreign id is recognised and answered like the real API does
// ("0007 Invalid token").

// Kinds of opaque ids.
const (
	kindMessage    = 'm'
	kindAttachment = 'a'
	kindDomain     = 'd'
)

// maxIDLen bounds what decodeID accepts; real ids are at most a few hundred characters.
const maxIDLen = 2048

// keyring derives every secret of one simulator from its seed, so ids and tokens are the
// same across runs with the same seed.
type keyring struct {
	key          []byte
	customerCode string
}

func newKeyring(seed int64) keyring {
	h := sha256.Sum256([]byte("mimecast-sim/v1/" + strconv.FormatInt(seed, 10)))
	return keyring{key: h[:], customerCode: "C" + strings.ToUpper(hex.EncodeToString(h[:3]))}
}

// mac returns the keyed digest of parts joined by a separator.
func (k keyring) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, k.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

type idPayload struct {
	SecureID     string `json:"secureid"`
	CustomerCode string `json:"customercode"`
	ArchiveID    string `json:"archiveid"`
	Type         string `json:"type"`
	Part         int    `json:"part"`
	Version      int    `json:"version"`
}

func (k keyring) secureID(kind byte, seq uint32, part int) string {
	return hex.EncodeToString(k.mac("id", string(kind), strconv.FormatUint(uint64(seq), 10), strconv.Itoa(part))[:12])
}

// encodeID renders the opaque id of (kind, seq, part).
func (k keyring) encodeID(kind byte, seq uint32, part int) string {
	// Hand-written JSON keeps the field order fixed and avoids reflection on a hot path.
	var js []byte
	js = append(js, `{"secureid":"`...)
	js = append(js, k.secureID(kind, seq, part)...)
	js = append(js, `","customercode":"`...)
	js = append(js, k.customerCode...)
	js = append(js, `","archiveid":"`...)
	js = strconv.AppendUint(js, uint64(seq), 10)
	js = append(js, `","type":"`...)
	js = append(js, kind)
	js = append(js, `","part":`...)
	js = strconv.AppendInt(js, int64(part), 10)
	js = append(js, `,"version":1}`...)
	return base64.RawURLEncoding.EncodeToString(storedZlib(js))
}

// decodeID parses an opaque id. ok is false for anything this simulator did not issue.
func (k keyring) decodeID(id string) (kind byte, seq uint32, part int, ok bool) {
	if len(id) < 8 || len(id) > maxIDLen || !strings.HasPrefix(id, "eN") {
		return 0, 0, 0, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return 0, 0, 0, false
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return 0, 0, 0, false
	}
	js, err := io.ReadAll(io.LimitReader(zr, maxIDLen))
	if err != nil {
		return 0, 0, 0, false
	}
	var p idPayload
	if err := json.Unmarshal(js, &p); err != nil || len(p.Type) != 1 {
		return 0, 0, 0, false
	}
	n, err := strconv.ParseUint(p.ArchiveID, 10, 32)
	if err != nil {
		return 0, 0, 0, false
	}
	kind, seq, part = p.Type[0], uint32(n), p.Part
	if !hmac.Equal([]byte(p.SecureID), []byte(k.secureID(kind, seq, part))) || p.CustomerCode != k.customerCode {
		return 0, 0, 0, false
	}
	return kind, seq, part, true
}

// storedZlib wraps data in a zlib stream (header 0x78 0xDA) holding one stored deflate block.
func storedZlib(data []byte) []byte {
	sum := adler32.Checksum(data)
	out := make([]byte, 0, len(data)+11)
	out = append(out, 0x78, 0xDA)
	for len(data) > 0 || len(out) == 2 {
		n := min(len(data), 0xFFFF)
		final := byte(0)
		if n == len(data) {
			final = 1
		}
		out = append(out, final)
		out = binary.LittleEndian.AppendUint16(out, uint16(n))
		out = binary.LittleEndian.AppendUint16(out, ^uint16(n))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return binary.BigEndian.AppendUint32(out, sum)
}

// sealed tokens: base64url(json) "." base64url(mac). Used for page tokens and download
// URLs, which must be opaque to clients and unforgeable.

func (k keyring) seal(purpose string, v any) (string, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	body := base64.RawURLEncoding.EncodeToString(js)
	sig := base64.RawURLEncoding.EncodeToString(k.mac(purpose, body)[:18])
	return body + "." + sig, nil
}

// open verifies a sealed token and decodes it into v; false if it was not issued for purpose.
func (k keyring) open(purpose, token string, v any) bool {
	if len(token) > 4096 {
		return false
	}
	body, sig, found := strings.Cut(token, ".")
	if !found {
		return false
	}
	want := base64.RawURLEncoding.EncodeToString(k.mac(purpose, body)[:18])
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return false
	}
	js, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return false
	}
	return json.Unmarshal(js, v) == nil
}
