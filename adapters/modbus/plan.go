package modbus

import (
	"slices"
)

// block is one read request: a run of registers or bits of one table that
// covers some points.
type block struct {
	table  table
	start  uint16
	count  uint16 // registers or bits
	points []int  // indices into the device's points, in address order
}

// planner merges a device's points into blocks. It remembers where reads
// must not be merged (cuts), learnt from exception 2 replies, and caches
// one plan per set of due schedules. It is owned by the runner's goroutine.
type planner struct {
	pts     []point
	maxRegs int
	maxBits int
	maxGap  int
	// sched is the schedule of each point: an index into multiples.
	sched     []int
	multiples []int // the distinct `every` of the points, ascending
	// order lists, per table, the points sorted by address then size;
	// pos is each point's place in its table's order.
	order [discrete + 1][]int
	pos   []int
	// cuts[t][k] forbids one read spanning order[t][k] and order[t][k+1].
	cuts  [discrete + 1][]bool
	cache map[uint64][]block
}

func newPlanner(pts []point, maxRegs, maxBits, maxGap int) *planner {
	pl := &planner{pts: pts, maxRegs: maxRegs, maxBits: maxBits, maxGap: maxGap,
		sched: make([]int, len(pts)), pos: make([]int, len(pts)), cache: map[uint64][]block{}}
	for _, p := range pts {
		if !slices.Contains(pl.multiples, p.every) {
			pl.multiples = append(pl.multiples, p.every)
		}
	}
	slices.Sort(pl.multiples)
	for i, p := range pts {
		pl.sched[i] = slices.Index(pl.multiples, p.every)
		pl.order[p.table] = append(pl.order[p.table], i)
	}
	for t := range pl.order {
		o := pl.order[t]
		slices.SortStableFunc(o, func(a, b int) int {
			if d := int(pts[a].addr) - int(pts[b].addr); d != 0 {
				return d
			}
			return pts[a].n - pts[b].n
		})
		for k, i := range o {
			pl.pos[i] = k
		}
		pl.cuts[t] = make([]bool, len(o))
	}
	return pl
}

// all is the set of every schedule.
func (pl *planner) all() uint64 {
	if len(pl.multiples) >= 64 {
		return ^uint64(0)
	}
	return 1<<len(pl.multiples) - 1
}

// due returns the schedules due at device tick n when the previous poll was
// at tick last (last < 0: never polled, everything is due). Ticks skipped
// because the bus was busy or the device backed off still count: a schedule
// whose tick passed in between is due now.
func (pl *planner) due(last, n int64) uint64 {
	if last < 0 {
		return pl.all()
	}
	var set uint64
	for s, m := range pl.multiples {
		if n/int64(m) > last/int64(m) {
			set |= 1 << s
		}
	}
	return set
}

// plan returns the reads of the points in the due schedules. The slice is
// shared with later calls and must not be modified.
func (pl *planner) plan(due uint64) []block {
	if b, ok := pl.cache[due]; ok {
		return b
	}
	var out []block
	for t := holding; t <= discrete; t++ {
		out = pl.planTable(out, t, due)
	}
	pl.cache[due] = out
	return out
}

func (pl *planner) planTable(out []block, t table, due uint64) []block {
	limit, gap := pl.maxRegs, pl.maxGap
	if t.bits() {
		// A gap of 16 bits costs the wire what one register does.
		limit, gap = pl.maxBits, pl.maxGap*16
	}
	cur := -1 // index in out of the block being grown
	curEnd, lastPos := 0, 0
	for k, i := range pl.order[t] {
		if due&(1<<pl.sched[i]) == 0 {
			continue
		}
		p := &pl.pts[i]
		if cur >= 0 && p.end()-int(out[cur].start) <= limit && int(p.addr)-curEnd <= gap && !pl.cutBetween(t, lastPos, k) {
			b := &out[cur]
			b.points = append(b.points, i)
			curEnd = max(curEnd, p.end())
			b.count = uint16(curEnd - int(b.start))
		} else {
			out = append(out, block{table: t, start: p.addr, count: uint16(p.n), points: []int{i}})
			cur = len(out) - 1
			curEnd = p.end()
		}
		lastPos = k
	}
	return out
}

// cutBetween reports whether a cut lies between positions a and b (a < b)
// of table t's order.
func (pl *planner) cutBetween(t table, a, b int) bool {
	return slices.Contains(pl.cuts[t][a:b], true)
}

// split halves a block whose read the device refused with exception 2 and
// remembers the cut, so that later plans keep the halves apart. It returns
// false for a block of one point, which is the offending point itself.
func (pl *planner) split(b block) (left, right block, ok bool) {
	if len(b.points) < 2 {
		return block{}, block{}, false
	}
	mid := len(b.points) / 2
	pl.cuts[b.table][pl.pos[b.points[mid-1]]] = true
	clear(pl.cache)
	return pl.span(b.table, b.points[:mid]), pl.span(b.table, b.points[mid:]), true
}

// span returns the block covering exactly the given points of table t.
func (pl *planner) span(t table, points []int) block {
	lo, hi := 0xffff+1, 0
	for _, i := range points {
		lo = min(lo, int(pl.pts[i].addr))
		hi = max(hi, pl.pts[i].end())
	}
	return block{table: t, start: uint16(lo), count: uint16(hi - lo), points: slices.Clone(points)}
}
