package sshlink

import (
	"errors"
	"strings"
)

// Limits on an exec command line.
const (
	maxCommandLen   = 4096
	maxCommandWords = 64
)

var (
	errUnterminated = errors.New("sshlink: unterminated quote")
	errTooLong      = errors.New("sshlink: command too long")
)

// splitWords splits an exec command line the way a POSIX shell splits words:
// blanks separate words, single quotes keep everything literally, double
// quotes keep everything but a backslash before " \ $ or `, and a backslash
// outside quotes keeps the next character. There is no expansion of any kind.
func splitWords(s string) ([]string, error) {
	if len(s) > maxCommandLen {
		return nil, errTooLong
	}
	var (
		words []string
		w     strings.Builder
		in    bool // inside a word (possibly an empty quoted one)
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		case ch == '\\':
			in = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					w.WriteByte(s[i])
				}
			}
		case ch == '\'':
			in = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errUnterminated
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			in = true
			i++
			for ; ; i++ {
				if i >= len(s) {
					return nil, errUnterminated
				}
				c := s[i]
				if c == '"' {
					break
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					i++
					if s[i] != '\n' {
						w.WriteByte(s[i])
					}
					continue
				}
				w.WriteByte(c)
			}
		default:
			in = true
			w.WriteByte(ch)
		}
		if len(words) > maxCommandWords {
			return nil, errTooLong
		}
	}
	if in {
		words = append(words, w.String())
	}
	if len(words) > maxCommandWords {
		return nil, errTooLong
	}
	return words, nil
}

// quoteWord quotes w so that splitWords gives it back unchanged.
func quoteWord(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\n\r\\'\"") {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
