//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"time"
)

func runEpollFloor(context.Context, string, time.Duration, io.Writer) error {
	return errors.New("the event-loop floor needs Linux (epoll)")
}

func newEpollHolder() (streamHolder, error) {
	return nil, errors.New("the epoll holder needs Linux (epoll)")
}
