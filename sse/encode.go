package sse

import (
	"strconv"
	"strings"
)

// AppendEvent appends one SSE event to dst. id and name are written only when
// set; data is split on line breaks (CRLF, CR or LF) into "data:" lines, so
// any payload survives the trip. Line breaks in id and name are dropped: they
// would end the field early.
func AppendEvent(dst []byte, id, name string, data []byte) []byte {
	if id != "" {
		dst = append(dst, "id: "...)
		dst = appendField(dst, id)
		dst = append(dst, '\n')
	}
	if name != "" {
		dst = append(dst, "event: "...)
		dst = appendField(dst, name)
		dst = append(dst, '\n')
	}
	for {
		i := indexLineBreak(data)
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			dst = append(dst, '\n')
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	return append(dst, '\n')
}

// AppendComment appends a comment block (ignored by EventSource; keeps
// proxies and the client's connection alive).
func AppendComment(dst []byte, text string) []byte {
	dst = append(dst, ':')
	if text != "" {
		dst = append(dst, ' ')
		dst = appendField(dst, text)
	}
	return append(dst, '\n', '\n')
}

// AppendRetry appends the reconnection delay field, in milliseconds.
func AppendRetry(dst []byte, ms int) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, int64(ms), 10)
	return append(dst, '\n')
}

func appendField(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\r' && c != '\n' && c != 0 {
			dst = append(dst, c)
		}
	}
	return dst
}

func indexLineBreak(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}
