package sse

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Message is one block of a text/event-stream, as parsed by Reader.
type Message struct {
	ID       string // the id field, when HasID
	HasID    bool
	Event    string // the event field ("" means "message" to EventSource)
	Data     string // data lines joined with "\n"
	HasData  bool
	Retry    int      // the retry field in milliseconds, 0 when absent
	Comments []string // comment lines, without the leading ':' and one space
}

// Dispatched reports whether a browser's EventSource would fire an event for
// this block (it needs at least one data line).
func (m Message) Dispatched() bool { return m.HasData }

// ErrLineTooLong is returned for a line over the reader's limit.
var ErrLineTooLong = errors.New("sse: line too long")

// Reader parses a text/event-stream as the HTML standard describes: lines end
// in CRLF, LF or CR; a blank line ends a block; unknown fields are ignored.
// Herald's tests and load tool read streams with it.
type Reader struct {
	r   *bufio.Reader
	max int
}

// NewReader returns a Reader; lines longer than 1 MiB are an error.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 4096), max: 1 << 20}
}

// Next returns the next non-empty block: one with any field or comment.
// At the end of the stream it returns io.EOF (a final block without its
// blank line is dropped, as EventSource does).
func (rd *Reader) Next() (Message, error) {
	var (
		m    Message
		any  bool
		data strings.Builder
	)
	for {
		line, err := rd.line()
		if err != nil {
			return Message{}, err
		}
		if len(line) == 0 {
			if any {
				m.Data = data.String()
				return m, nil
			}
			continue
		}
		any = true
		if line[0] == ':' {
			m.Comments = append(m.Comments, strings.TrimPrefix(string(line[1:]), " "))
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte{' '})
		}
		switch string(field) {
		case "event":
			m.Event = string(value)
		case "data":
			if m.HasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			m.HasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				m.ID, m.HasID = string(value), true
			}
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 {
				m.Retry = n
			}
		}
	}
}

// line reads one line without its terminator (CRLF, LF or CR).
func (rd *Reader) line() ([]byte, error) {
	var buf []byte
	for {
		b, err := rd.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, err
		}
		switch b {
		case '\n':
			return buf, nil
		case '\r':
			if next, err := rd.r.Peek(1); err == nil && next[0] == '\n' {
				_, _ = rd.r.ReadByte()
			}
			return buf, nil
		}
		if len(buf) >= rd.max {
			return nil, ErrLineTooLong
		}
		buf = append(buf, b)
	}
}
