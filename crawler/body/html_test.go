package body

import (
	"errors"
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	cases := []struct {
		name, html, want string
	}{
		{"empty", "", ""},
		{"plain text", "hello", "hello"},
		{"entities", "Caf&eacute; &amp; &lt;Bar&gt; &#8364;5 &#x263A; &quot;q&quot;", `Café & <Bar> €5 ☺ "q"`},
		{"whitespace collapses", "  a \n\t b&nbsp;&nbsp;&nbsp;c  ", "a b c"},
		{"br breaks lines", "one<br>two<br/>three<br><br>four", "one\ntwo\nthree\n\nfour"},
		{"paragraphs leave one blank line", "<p>one</p><p>two</p><p></p><p></p><p>three</p>", "one\n\ntwo\n\nthree"},
		{"headings", "<h1>Title</h1>text", "Title\n\ntext"},
		{"divs end lines", "<div>a</div><div>b</div>c", "a\nb\nc"},
		{"inline elements join", "a<b>b</b><i>c</i> <span>d</span>", "abc d"},
		{"lists", "<ul><li>x</li><li>y</li></ul>", "x\ny"},
		{"table cells", "<table><tr><th>h1</th><th>h2</th></tr><tr><td>a</td><td>b</td></tr></table>", "h1 h2\na b"},
		{"script and style dropped", "<script>alert('x')</script>a<style>.c{}</style>b<noscript><p>n</p></noscript>", "ab"},
		{"title dropped", "<html><head><title>T</title></head><body>B</body></html>", "B"},
		{"template dropped", "<template><p>hidden</p></template>shown", "shown"},
		{"comments dropped", "a<!-- secret -->b", "ab"},
		{"pre keeps layout", "<pre>line 1\n  indented\n</pre>after", "line 1\n  indented\nafter"},
		{"invisible preheader padding", "Preview&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847; te&#8203;xt&shy;book", "Preview textbook"},
		{"unclosed tags", "<div><p>open<b>bold</div>next", "openbold\nnext"},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb"},
		{"attributes ignored", `<a href="https://example.com/x?a=1&amp;b=2">link</a>`, "link"},
		{"stray end br", "a</br>b", "a\nb"},
		{"CDATA-like text in body", "x <![CDATA[y]]> z", "x z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HTMLToText(strings.NewReader(tc.html))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("HTMLToText(%q) = %q, want %q", tc.html, got, tc.want)
			}
		})
	}
}

func TestHTMLToTextReadError(t *testing.T) {
	cause := errors.New("broken pipe")
	got, err := HTMLToText(&failingReader{data: "<p>partial text", err: cause})
	if !errors.Is(err, cause) {
		t.Fatalf("error = %v, want one wrapping %v", err, cause)
	}
	if got != "partial text" {
		t.Errorf("text = %q, want the part read before the error", got)
	}
}
