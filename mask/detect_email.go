package mask

import "bytes"

// EmailAddress returns a Detector, named "email", that finds an e-mail
// address anywhere in a value: local@domain.tld.
//
// It matches an '@' with:
//   - before it, the end of a local part: an ASCII letter or digit, one of
//     "_%+-", or a byte of 0x80 or more (a UTF-8 local part, RFC 6531). Not
//     a dot (a local part does not end with one), nor other punctuation:
//     "{user}@example.com" is a template, not an address;
//   - after it, a domain: at least two labels separated by single dots,
//     each of 1 to 63 ASCII letters, digits, hyphens or bytes of 0x80 or
//     more (IDN), not starting or ending with a hyphen, the last one a
//     top-level domain: 2 or more letters (ASCII, or bytes of 0x80 or
//     more), or punycode ("xn--" then letters, digits or hyphens). The
//     domain may go on after the top-level domain ("a@example.com.evil"
//     matches at "example.com").
//
// It deliberately does not match: a missing local part ("@example.com"), a
// domain of one label ("a@b", "root@localhost"), a one-letter or numeric
// last label ("a@b.c", "a@10.0.0.1"), an address literal ("a@[10.0.0.1]"),
// empty labels ("a@example..com"), and a last label that is a common file
// extension and no top-level domain (png, jpg, jpeg, gif, svg, webp, bmp,
// ico, tif, tiff, css, js, json, txt, htm, html, xml, yml, yaml, pdf):
// "logo@2x.png" is an image, not an address. It does not check that the
// top-level domain exists otherwise, nor quoted local parts.
func EmailAddress() Detector { return emailDetector{} }

type emailDetector struct{}

func (emailDetector) Name() string { return detectorEmail }

func (emailDetector) Detect(b []byte) bool {
	// Each '@' reads one byte before it and the domain characters after
	// it, which stop at the next '@': linear.
	for off := 0; off < len(b); {
		k := bytes.IndexByte(b[off:], '@')
		if k < 0 {
			return false
		}
		at := off + k
		if at > 0 && detEmailLocalEnd(b[at-1]) && detEmailDomain(b[at+1:]) {
			return true
		}
		off = at + 1
	}
	return false
}

// detEmailLocalEnd reports whether c may end the local part of an address.
func detEmailLocalEnd(c byte) bool {
	return detIsAlnum(c) || c == '_' || c == '%' || c == '+' || c == '-' || c >= 0x80
}

// detEmailLabelByte reports whether c may be part of a domain label.
func detEmailLabelByte(c byte) bool { return detIsAlnum(c) || c == '-' || c >= 0x80 }

// detEmailDomain reports whether d starts with a domain of two labels or
// more whose last label is a top-level domain.
func detEmailDomain(d []byte) bool {
	i, labels := 0, 0
	for {
		start, letters := i, true
		for i < len(d) && detEmailLabelByte(d[i]) {
			if !detIsAlpha(d[i]) && d[i] < 0x80 {
				letters = false
			}
			i++
		}
		label := d[start:i]
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		labels++
		if labels >= 2 && detEmailTLD(label, letters) {
			return true
		}
		if i+1 >= len(d) || d[i] != '.' {
			return false
		}
		i++
	}
}

// detEmailTLD reports whether label may be a top-level domain; letters
// says whether it is all letters.
func detEmailTLD(label []byte, letters bool) bool {
	if len(label) > 4 && (label[0]|0x20) == 'x' && (label[1]|0x20) == 'n' && label[2] == '-' && label[3] == '-' {
		return true
	}
	if !letters || len(label) < 2 {
		return false
	}
	return !detFileExtension(label)
}

// detFileExtensions are common file extensions that are no top-level
// domain, in lower case.
var detFileExtensions = [...]string{
	"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff",
	"css", "js", "json", "txt", "htm", "html", "xml", "yml", "yaml", "pdf",
}

// detFileExtension reports whether label is one of detFileExtensions, in
// any case.
func detFileExtension(label []byte) bool {
	if len(label) > 4 {
		return false
	}
	var lower [4]byte
	for i, c := range label {
		lower[i] = c | 0x20 // label is letters only
	}
	for _, ext := range detFileExtensions {
		if string(lower[:len(label)]) == ext {
			return true
		}
	}
	return false
}
