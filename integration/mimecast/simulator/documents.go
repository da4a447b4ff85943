package simulator

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"fmt"
	"html"
	"strings"
	"time"
)

// Real documents. Each is the smallest file its application opens, written by hand so that
// every byte is deterministic: fixed member order and times, and compress/flate, whose output
// depends on its input only. Each carries a token: a word found in that file's text only,
// which the truth lists as text_token.

// Document formats SampleDocument writes.
const (
	DocPDF  = "pdf"
	DocDOCX = "docx"
	DocXLSX = "xlsx"
	DocPPTX = "pptx"
	DocODT  = "odt"
	DocODS  = "ods"
	DocODP  = "odp"
	DocRTF  = "rtf"
	DocHTML = "html"
	DocCSV  = "csv"
	DocTXT  = "txt"
	DocEML  = "eml" // an RFC 822 message, attached as message/rfc822
)

// SampleDocument returns a minimal valid file of format (DocPDF, DocDOCX, ...) whose text is
// words followed by token. It panics on an unknown format.
func SampleDocument(format, token string, words ...string) []byte {
	text := strings.Join(append(append([]string{}, words...), token), " ")
	switch format {
	case DocPDF:
		return pdfDocument(text, nil)
	case DocDOCX:
		return docxDocument(text)
	case DocXLSX:
		return xlsxDocument(text, token)
	case DocPPTX:
		return pptxDocument(text)
	case DocODT:
		return odfDocument(odfText, text)
	case DocODS:
		return odfDocument(odfSpreadsheet, text)
	case DocODP:
		return odfDocument(odfPresentation, text)
	case DocRTF:
		return rtfDocument(text)
	case DocHTML:
		return htmlDocument(text)
	case DocCSV:
		return csvDocument(text)
	case DocTXT:
		return []byte(strings.Join(paragraphs(text, 12), "\r\n") + "\r\n")
	case DocEML:
		return emlDocument(text)
	}
	panic("simulator: unknown document format " + format)
}

// pdfDocument writes a one-page PDF 1.4 whose page shows text in Helvetica from a
// Flate-compressed content stream. pad, when not empty, is added as an uncompressed 8-bit
// grey image resource (256 pixels wide), so the file reaches a size without more text.
func pdfDocument(text string, pad []byte) []byte {
	var content bytes.Buffer
	content.WriteString("BT\n/F1 12 Tf\n72 720 Td\n14 TL\n")
	for _, line := range wrapWords(text, 70) {
		fmt.Fprintf(&content, "(%s) Tj T*\n", pdfEscape(line))
	}
	content.WriteString("ET\n")
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write(content.Bytes()) // writes to a bytes.Buffer never fail
	_ = zw.Close()
	return pdfFile(z.Bytes(), pad)
}

// pdfFile assembles the objects and the cross-reference table around a compressed content
// stream.
func pdfFile(stream, pad []byte) []byte {
	var b bytes.Buffer
	var offsets []int
	obj := func(body string, data []byte) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s", len(offsets), body)
		if data != nil {
			b.WriteString("\nstream\n")
			b.Write(data)
			b.WriteString("\nendstream")
		}
		b.WriteString("\nendobj\n")
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>", nil)
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>", nil)
	resources := "/Font << /F1 5 0 R >>"
	if len(pad) > 0 {
		resources += " /XObject << /Im1 6 0 R >>"
	}
	obj("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << "+resources+" >> /Contents 4 0 R >>", nil)
	obj(fmt.Sprintf("<< /Length %d /Filter /FlateDecode >>", len(stream)), stream)
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>", nil)
	if len(pad) > 0 {
		const width = 256
		pad = pad[:len(pad)/width*width]
		obj(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Length %d >>",
			width, len(pad)/width, len(pad)), pad)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return b.Bytes()
}

// brokenPDF is a PDF whose only content stream is not valid deflate data.
func brokenPDF(text string) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write([]byte("BT /F1 12 Tf 72 720 Td (" + pdfEscape(text) + ") Tj ET"))
	_ = zw.Close()
	s := z.Bytes()
	// After the two-byte zlib header: a block of the reserved type 3, which no inflater accepts.
	for i := 2; i < len(s) && i < 8; i++ {
		s[i] = 0xff
	}
	return pdfFile(s, nil)
}

func pdfEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`)
	return r.Replace(s)
}

// wrapWords breaks text into lines of about width characters.
func wrapWords(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(text) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// zipMember is one file of a ZIP container.
type zipMember struct {
	name  string
	data  string
	store bool // stored, not deflated (ODF's mimetype must be)
}

var zipTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func zipFile(members []zipMember) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: zipTime}
		if m.store {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			panic(err) // only for invalid names, which are constants here
		}
		_, _ = w.Write([]byte(m.data))
	}
	_ = zw.Close()
	return b.Bytes()
}

const xmlDecl = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

func paragraphs(text string, per int) []string {
	var out []string
	words := strings.Fields(text)
	for len(words) > 0 {
		n := min(per, len(words))
		out = append(out, strings.Join(words[:n], " "))
		words = words[n:]
	}
	return out
}

func docxDocument(text string) []byte {
	var body strings.Builder
	for _, p := range paragraphs(text, 12) {
		body.WriteString(`<w:p><w:r><w:t xml:space="preserve">` + html.EscapeString(p) + `</w:t></w:r></w:p>`)
	}
	return zipFile([]zipMember{
		{name: "[Content_Types].xml", data: xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>` +
			`</Types>`},
		{name: "_rels/.rels", data: xmlDecl + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>` +
			`</Relationships>`},
		{name: "word/document.xml", data: xmlDecl + `<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			body.String() + `<w:sectPr/></w:body></w:document>`},
	})
}

// xlsxDocument writes one sheet: a header row, then the words two to a row as shared strings,
// with the token as an inline string so both kinds of cell are exercised.
func xlsxDocument(text, token string) []byte {
	words := strings.Fields(strings.TrimSuffix(text, token))
	var shared, rows strings.Builder
	for i, w := range words {
		shared.WriteString(`<si><t>` + html.EscapeString(w) + `</t></si>`)
		col := string(rune('A' + i%2))
		if i%2 == 0 {
			fmt.Fprintf(&rows, `<row r="%d">`, i/2+1)
		}
		fmt.Fprintf(&rows, `<c r="%s%d" t="s"><v>%d</v></c>`, col, i/2+1, i)
		if i%2 == 1 || i == len(words)-1 {
			rows.WriteString(`</row>`)
		}
	}
	last := (len(words)+1)/2 + 1
	fmt.Fprintf(&rows, `<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c><c r="B%d"><v>%d</v></c></row>`,
		last, last, html.EscapeString(token), last, 42)
	ns := `xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"`
	rel := `http://schemas.openxmlformats.org/officeDocument/2006/relationships`
	return zipFile([]zipMember{
		{name: "[Content_Types].xml", data: xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
			`<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>` +
			`<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>` +
			`</Types>`},
		{name: "_rels/.rels", data: xmlDecl + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="` + rel + `/officeDocument" Target="xl/workbook.xml"/></Relationships>`},
		{name: "xl/workbook.xml", data: xmlDecl + `<workbook ` + ns + ` xmlns:r="` + rel + `">` +
			`<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`},
		{name: "xl/_rels/workbook.xml.rels", data: xmlDecl + `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="` + rel + `/worksheet" Target="worksheets/sheet1.xml"/>` +
			`<Relationship Id="rId2" Type="` + rel + `/sharedStrings" Target="sharedStrings.xml"/></Relationships>`},
		{name: "xl/sharedStrings.xml", data: xmlDecl + fmt.Sprintf(`<sst %s count="%d" uniqueCount="%d">`, ns, len(words), len(words)) +
			shared.String() + `</sst>`},
		{name: "xl/worksheets/sheet1.xml", data: xmlDecl + `<worksheet ` + ns + `><sheetData>` + rows.String() + `</sheetData></worksheet>`},
	})
}

// pptxDocument writes one slide with one text box, with the slide master, layout and theme
// that PowerPoint requires.
func pptxDocument(text string) []byte {
	const (
		p   = `xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"`
		rel = `http://schemas.openxmlformats.org/officeDocument/2006/relationships`
		ct  = `application/vnd.openxmlformats-officedocument.presentationml.`
		rs  = `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">`
		grp = `<p:nvGrpSpPr><p:cNvPr id="1" name=""/><p:cNvGrpSpPr/><p:nvPr/></p:nvGrpSpPr><p:grpSpPr/>`
	)
	var paras strings.Builder
	for _, para := range paragraphs(text, 8) {
		paras.WriteString(`<a:p><a:r><a:rPr lang="en-US"/><a:t>` + html.EscapeString(para) + `</a:t></a:r></a:p>`)
	}
	theme := xmlDecl + `<a:theme xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" name="Office"><a:themeElements>` +
		`<a:clrScheme name="Office"><a:dk1><a:srgbClr val="000000"/></a:dk1><a:lt1><a:srgbClr val="FFFFFF"/></a:lt1>` +
		`<a:dk2><a:srgbClr val="1F497D"/></a:dk2><a:lt2><a:srgbClr val="EEECE1"/></a:lt2><a:accent1><a:srgbClr val="4F81BD"/></a:accent1>` +
		`<a:accent2><a:srgbClr val="C0504D"/></a:accent2><a:accent3><a:srgbClr val="9BBB59"/></a:accent3><a:accent4><a:srgbClr val="8064A2"/></a:accent4>` +
		`<a:accent5><a:srgbClr val="4BACC6"/></a:accent5><a:accent6><a:srgbClr val="F79646"/></a:accent6><a:hlink><a:srgbClr val="0000FF"/></a:hlink>` +
		`<a:folHlink><a:srgbClr val="800080"/></a:folHlink></a:clrScheme>` +
		`<a:fontScheme name="Office"><a:majorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:cs typeface=""/></a:majorFont>` +
		`<a:minorFont><a:latin typeface="Calibri"/><a:ea typeface=""/><a:cs typeface=""/></a:minorFont></a:fontScheme>` +
		`<a:fmtScheme name="Office"><a:fillStyleLst><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:fillStyleLst>` +
		`<a:lnStyleLst><a:ln w="9525"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln><a:ln w="25400"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln><a:ln w="38100"><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:ln></a:lnStyleLst>` +
		`<a:effectStyleLst><a:effectStyle><a:effectLst/></a:effectStyle><a:effectStyle><a:effectLst/></a:effectStyle><a:effectStyle><a:effectLst/></a:effectStyle></a:effectStyleLst>` +
		`<a:bgFillStyleLst><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill><a:solidFill><a:schemeClr val="phClr"/></a:solidFill></a:bgFillStyleLst>` +
		`</a:fmtScheme></a:themeElements></a:theme>`
	return zipFile([]zipMember{
		{name: "[Content_Types].xml", data: xmlDecl + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/ppt/presentation.xml" ContentType="` + ct + `presentation.main+xml"/>` +
			`<Override PartName="/ppt/slides/slide1.xml" ContentType="` + ct + `slide+xml"/>` +
			`<Override PartName="/ppt/slideLayouts/slideLayout1.xml" ContentType="` + ct + `slideLayout+xml"/>` +
			`<Override PartName="/ppt/slideMasters/slideMaster1.xml" ContentType="` + ct + `slideMaster+xml"/>` +
			`<Override PartName="/ppt/theme/theme1.xml" ContentType="application/vnd.openxmlformats-officedocument.theme+xml"/>` +
			`</Types>`},
		{name: "_rels/.rels", data: xmlDecl + rs + `<Relationship Id="rId1" Type="` + rel + `/officeDocument" Target="ppt/presentation.xml"/></Relationships>`},
		{name: "ppt/presentation.xml", data: xmlDecl + `<p:presentation ` + p + `>` +
			`<p:sldMasterIdLst><p:sldMasterId id="2147483648" r:id="rId1"/></p:sldMasterIdLst>` +
			`<p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst>` +
			`<p:sldSz cx="9144000" cy="6858000"/><p:notesSz cx="6858000" cy="9144000"/></p:presentation>`},
		{name: "ppt/_rels/presentation.xml.rels", data: xmlDecl + rs +
			`<Relationship Id="rId1" Type="` + rel + `/slideMaster" Target="slideMasters/slideMaster1.xml"/>` +
			`<Relationship Id="rId2" Type="` + rel + `/slide" Target="slides/slide1.xml"/>` +
			`<Relationship Id="rId3" Type="` + rel + `/theme" Target="theme/theme1.xml"/></Relationships>`},
		{name: "ppt/slides/slide1.xml", data: xmlDecl + `<p:sld ` + p + `><p:cSld><p:spTree>` + grp +
			`<p:sp><p:nvSpPr><p:cNvPr id="2" name="Text 1"/><p:cNvSpPr txBox="1"/><p:nvPr/></p:nvSpPr>` +
			`<p:spPr><a:xfrm><a:off x="457200" y="457200"/><a:ext cx="8229600" cy="5943600"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></p:spPr>` +
			`<p:txBody><a:bodyPr/><a:lstStyle/>` + paras.String() + `</p:txBody></p:sp>` +
			`</p:spTree></p:cSld></p:sld>`},
		{name: "ppt/slides/_rels/slide1.xml.rels", data: xmlDecl + rs +
			`<Relationship Id="rId1" Type="` + rel + `/slideLayout" Target="../slideLayouts/slideLayout1.xml"/></Relationships>`},
		{name: "ppt/slideLayouts/slideLayout1.xml", data: xmlDecl + `<p:sldLayout ` + p + ` type="blank"><p:cSld name="Blank"><p:spTree>` + grp +
			`</p:spTree></p:cSld></p:sldLayout>`},
		{name: "ppt/slideLayouts/_rels/slideLayout1.xml.rels", data: xmlDecl + rs +
			`<Relationship Id="rId1" Type="` + rel + `/slideMaster" Target="../slideMasters/slideMaster1.xml"/></Relationships>`},
		{name: "ppt/slideMasters/slideMaster1.xml", data: xmlDecl + `<p:sldMaster ` + p + `><p:cSld><p:spTree>` + grp +
			`</p:spTree></p:cSld><p:clrMap bg1="lt1" tx1="dk1" bg2="lt2" tx2="dk2" accent1="accent1" accent2="accent2" accent3="accent3" accent4="accent4" accent5="accent5" accent6="accent6" hlink="hlink" folHlink="folHlink"/>` +
			`<p:sldLayoutIdLst><p:sldLayoutId id="2147483649" r:id="rId1"/></p:sldLayoutIdLst></p:sldMaster>`},
		{name: "ppt/slideMasters/_rels/slideMaster1.xml.rels", data: xmlDecl + rs +
			`<Relationship Id="rId1" Type="` + rel + `/slideLayout" Target="../slideLayouts/slideLayout1.xml"/>` +
			`<Relationship Id="rId2" Type="` + rel + `/theme" Target="../theme/theme1.xml"/></Relationships>`},
		{name: "ppt/theme/theme1.xml", data: theme},
	})
}

// odfKind is one of the OpenDocument types: its media type and how its content.xml holds
// paragraphs of text.
type odfKind struct {
	mediaType string
	body      func(paras []string) string // the office:body element's content
}

var (
	odfText = odfKind{"application/vnd.oasis.opendocument.text", func(paras []string) string {
		return `<office:text>` + odfParas(paras, "", "") + `</office:text>`
	}}
	// One column, a row per paragraph.
	odfSpreadsheet = odfKind{"application/vnd.oasis.opendocument.spreadsheet", func(paras []string) string {
		return `<office:spreadsheet><table:table table:name="Sheet1"><table:table-column/>` +
			odfParas(paras, `<table:table-row><table:table-cell office:value-type="string">`, `</table:table-cell></table:table-row>`) +
			`</table:table></office:spreadsheet>`
	}}
	// One slide with one text box.
	odfPresentation = odfKind{"application/vnd.oasis.opendocument.presentation", func(paras []string) string {
		return `<office:presentation><draw:page draw:name="page1" draw:master-page-name="Default">` +
			`<draw:frame svg:x="2cm" svg:y="2cm" svg:width="24cm" svg:height="15cm"><draw:text-box>` +
			odfParas(paras, "", "") + `</draw:text-box></draw:frame></draw:page></office:presentation>`
	}}
)

func odfParas(paras []string, before, after string) string {
	var b strings.Builder
	for _, p := range paras {
		b.WriteString(before + `<text:p>` + html.EscapeString(p) + `</text:p>` + after)
	}
	return b.String()
}

// odfDocument writes an OpenDocument file: the stored mimetype first, the manifest, content.
func odfDocument(k odfKind, text string) []byte {
	return zipFile([]zipMember{
		{name: "mimetype", data: k.mediaType, store: true},
		{name: "META-INF/manifest.xml", data: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">` +
			`<manifest:file-entry manifest:full-path="/" manifest:media-type="` + k.mediaType + `"/>` +
			`<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>` +
			`</manifest:manifest>`},
		{name: "content.xml", data: `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" ` +
			`xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" ` +
			`xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" ` +
			`xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" ` +
			`xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.2">` +
			`<office:body>` + k.body(paragraphs(text, 12)) + `</office:body></office:document-content>`},
	})
}

// rtfDocument writes an RTF 1 document: a font table, then a paragraph per dozen words.
func rtfDocument(text string) []byte {
	esc := strings.NewReplacer(`\`, `\\`, `{`, `\{`, `}`, `\}`)
	var b strings.Builder
	b.WriteString(`{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Helvetica;}}` + "\r\n" + `\f0\fs24 `)
	for _, p := range paragraphs(text, 12) {
		b.WriteString(esc.Replace(p) + `\par` + "\r\n")
	}
	b.WriteString("}\r\n")
	return []byte(b.String())
}

// htmlDocument writes an HTML page of paragraphs.
func htmlDocument(text string) []byte {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>Document</title></head>\r\n<body>\r\n")
	for _, p := range paragraphs(text, 12) {
		b.WriteString("<p>" + html.EscapeString(p) + "</p>\r\n")
	}
	b.WriteString("</body></html>\r\n")
	return []byte(b.String())
}

// csvDocument writes a CSV of a header and a row of three words per line (RFC 4180: CRLF
// line ends, fields quoted where they hold a quote or a comma).
func csvDocument(text string) []byte {
	var b strings.Builder
	b.WriteString("first,second,third\r\n")
	for _, row := range paragraphs(text, 3) {
		fields := strings.Fields(row)
		for i, f := range fields {
			if strings.ContainsAny(f, "\",") {
				f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
			}
			fields[i] = f
		}
		b.WriteString(strings.Join(fields, ",") + "\r\n")
	}
	return []byte(b.String())
}

// emlDocument writes an RFC 822 message with a 7-bit text/plain body holding text: the
// attached message of a forward.
func emlDocument(text string) []byte {
	var b strings.Builder
	for _, h := range [][2]string{
		{"From", "Archive Sender <sender@example.org>"},
		{"To", "Archive Reader <reader@example.org>"},
		{"Subject", "Forwarded document"},
		{"Date", zipTime.Format(time.RFC1123Z)},
		{"Message-ID", "<attached.document@example.org>"},
		{"MIME-Version", "1.0"},
		{"Content-Type", `text/plain; charset="us-ascii"`},
		{"Content-Transfer-Encoding", "7bit"},
	} {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	for _, p := range paragraphs(text, 12) {
		b.WriteString(p + "\r\n")
	}
	return []byte(b.String())
}
