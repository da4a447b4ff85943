package body

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message"
)

// wholeDecode is what base64Reader must produce: the whole encoded text, white space removed,
// decoded at once; ok=false when that fails, out then holds the bytes decoded before the fault.
func wholeDecode(enc []byte) (out []byte, ok bool) {
	var chars []byte
	for _, c := range enc {
		switch c {
		case '\r', '\n', ' ', '\t':
		default:
			chars = append(chars, c)
		}
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(chars))+3)
	n, err := base64.StdEncoding.Decode(dst, chars)
	return dst[:n], err == nil
}

// chunkReader returns r's bytes in pieces of random size.
type chunkReader struct {
	r   io.Reader
	rnd *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1+c.rnd.IntN(min(len(p), 5000))]
	}
	return c.r.Read(p)
}

// encodeLines encodes data in lines of width characters (0: one line), ending each with eol.
func encodeLines(data []byte, width int, eol string) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	if width <= 0 {
		return []byte(enc + eol)
	}
	var b strings.Builder
	for len(enc) > width {
		b.WriteString(enc[:width] + eol)
		enc = enc[width:]
	}
	b.WriteString(enc + eol)
	return []byte(b.String())
}

func readAllBase64(t *testing.T, r io.Reader, viaWriteTo bool) ([]byte, error) {
	t.Helper()
	d := newBase64Reader(r)
	if viaWriteTo {
		var b bytes.Buffer
		_, err := d.WriteTo(&b)
		return b.Bytes(), err
	}
	return io.ReadAll(d)
}

func TestBase64ReaderMatchesWholeDecode(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := range 3000 {
		data := randomBytes(rnd.IntN(40000), uint64(i))
		width := []int{76, 64, 72, 73, 0, 4, 1, 3, 10000}[rnd.IntN(9)]
		enc := encodeLines(data, width, []string{"\r\n", "\n", "\r\r\n", " \r\n\t"}[rnd.IntN(4)])
		switch rnd.IntN(6) {
		case 1: // a bad character
			enc[rnd.IntN(len(enc))] = "!*-_.é"[rnd.IntN(6)]
		case 2: // white space within a line
			at := rnd.IntN(len(enc))
			enc = append(enc[:at], append([]byte{" \t\r\n"[rnd.IntN(4)]}, enc[at:]...)...)
		case 3: // cut anywhere
			enc = enc[:rnd.IntN(len(enc))]
		case 4: // something after the padding or the end
			enc = append(enc, []byte([]string{"QUJD\r\n", "=\r\n", "  \r\n", "QQ==\r\n", "\r\n\r\n"}[rnd.IntN(5)])...)
		case 5: // a second encoded text, as concatenating mailers write
			enc = append(enc, encodeLines(randomBytes(1+rnd.IntN(100), uint64(i)), 76, "\r\n")...)
		}
		want, ok := wholeDecode(enc)
		viaWriteTo := i%2 == 0
		got, err := readAllBase64(t, &chunkReader{r: bytes.NewReader(enc), rnd: rnd}, viaWriteTo)
		if !bytes.Equal(got, want) || (err == nil) != ok {
			t.Fatalf("case %d (width %d, %d encoded bytes, WriteTo %t): got %d bytes, error %v; want %d bytes, ok %t",
				i, width, len(enc), viaWriteTo, len(got), err, len(want), ok)
		}
	}
}

func TestBase64ReaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name, enc string
		want      string
		err       error
	}{
		{"valid", "SGVsbG8g\r\nd29ybGQ=\r\n", "Hello world", nil},
		{"no line end", "SGVsbG8gd29ybGQ=", "Hello world", nil},
		{"spaces and tabs anywhere", " SGVs bG8g\td29y\r\n bGQ=\r\n", "Hello world", nil},
		{"cut in a quantum", "SGVsbG8gd29yb", "Hello wor", io.ErrUnexpectedEOF},
		{"bad character", "SGVsbG8g\r\nd2!ybGQ=\r\n", "Hello ", base64.CorruptInputError(12)},
		{"text after padding", "SGVsbG8gd29ybGQ=\r\n!!!not base64!!!\r\n", "Hello world", base64.CorruptInputError(18)},
		{"second text after padding", "QQ==\r\nQUJD\r\n", "A", base64.CorruptInputError(6)},
		{"padding split over lines", "QQ=\r\n=\r\n", "A", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tc.enc), iotest.OneByteReader(strings.NewReader(tc.enc))} {
				got, err := io.ReadAll(newBase64Reader(r))
				if string(got) != tc.want || !errors.Is(err, tc.err) && err != tc.err {
					t.Errorf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
				}
			}
		})
	}
}

func TestBase64ReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("SGVsbG8g\r\nd29y"), iotest.ErrReader(boom))
	got, err := io.ReadAll(newBase64Reader(r))
	if string(got) != "Hello wor" || !errors.Is(err, boom) {
		t.Errorf("got %q, %v; want %q, %v", got, err, "Hello wor", boom)
	}
}

// TestNewEntityDecodesAsGoMessage compares whole parts read through newEntity with go-message's
// own decoding, charsets included.
func TestNewEntityDecodesAsGoMessage(t *testing.T) {
	for _, tc := range []struct{ header, body string }{
		{"Content-Type: application/pdf\r\nContent-Transfer-Encoding: BASE64\r\n", string(encodeLines(randomBytes(30000, 3), 76, "\r\n"))},
		{"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n", string(encodeLines([]byte("Gr\xfc\xdfe aus K\xf6ln"), 76, "\r\n"))},
		{"Content-Transfer-Encoding: base64\r\n", "SGVs bG8=\r\n"},
		{"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n", "caf=C3=A9\r\n"},
		{"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n", "--b\r\n\r\nx\r\n--b--\r\n"},
	} {
		msg := tc.header + "\r\n" + tc.body
		h1, b1, _, _ := readHeader(bufioReader(msg))
		h2, b2, _, _ := readHeader(bufioReader(msg))
		want, wantErr := message.New(message.Header{Header: h1}, b1)
		got, gotErr := newEntity(message.Header{Header: h2}, b2)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: error %v, go-message %v", tc.header, gotErr, wantErr)
		}
		wb, _ := io.ReadAll(want.Body)
		gb, _ := io.ReadAll(got.Body)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%q: body %q, go-message %q", tc.header, head(gb, 40), head(wb, 40))
		}
		if got.Header.Get("Content-Transfer-Encoding") != want.Header.Get("Content-Transfer-Encoding") {
			t.Errorf("%q: header changed", tc.header)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
