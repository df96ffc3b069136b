package main

import (
	"errors"
	"io"
)

func reportCmd(args []string, stdout, stderr io.Writer) error { return errors.New("todo") }
