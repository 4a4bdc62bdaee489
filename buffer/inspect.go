package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Inspect returns the Stats of the log in dir without opening it for
// writing or changing any file, so it works while a gateway has the log
// open. Appended and Fsyncs are zero; Dropped is as of the last cursor
// write. A record being appended concurrently may or may not be counted.
func Inspect(dir string) (Stats, error) {
	// A concurrent Ack can delete a segment between listing and reading.
	for attempt := 0; ; attempt++ {
		st, err := inspect(dir)
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return st, err
		}
	}
}

func inspect(dir string) (Stats, error) {
	ls, err := readDir(dir)
	if err != nil {
		return Stats{}, err
	}
	var cs cursorState
	cursorOK := false
	if b, err := os.ReadFile(filepath.Join(dir, cursorName)); err == nil {
		var reason string
		cs, reason = decodeCursor(b)
		cursorOK = reason == ""
	}
	segs := ls.segs
	if len(segs) == 0 {
		st := Stats{Dropped: cs.dropped, Quarantined: ls.quarantined}
		if cursorOK {
			st.Cursor, st.NextSeq = cs.cursor, cs.cursor
		}
		return st, nil
	}
	sealedEnds(segs, ls.bad, ls.qRanges)
	tail := segs[len(segs)-1]
	f, err := os.Open(tail.path)
	if err != nil {
		return Stats{}, fmt.Errorf("buffer: %w", err)
	}
	defer f.Close()
	ts, err := scanTail(f, tail, tail.size, nil)
	if err != nil {
		return Stats{}, err
	}
	tail.size, tail.end = ts.sc.off, ts.sc.seq

	cursor := segs[0].base
	if cursorOK {
		cursor = max(cursor, min(cs.cursor, tail.end))
	}
	// Sealed segments behind the cursor are deleted by the next Open.
	for len(segs) > 1 && segs[0].end <= cursor {
		segs = segs[1:]
	}
	var cpos cursorPos
	if cursorOK && cs.cursor == cursor {
		cpos.timeOK, cpos.t = cs.timeOK, cs.t
	}
	st := computeStats(segs, tail.end, cursor, cpos, time.Now())
	st.Dropped = cs.dropped
	st.Quarantined = ls.quarantined
	return st, nil
}
